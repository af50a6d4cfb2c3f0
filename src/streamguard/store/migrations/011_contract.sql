-- A small required core: a transaction needs its id, account, amount and event time. Every other
-- field may be unknown (a PIX transfer from internet banking has no location, a boleto no card,
-- the original system's messages carry only a merchant name and a category), so its column is
-- nullable, and the rules and the score read NULL as unknown, never as zero.
--
-- payee_key_type: the kind of PIX key the payee was addressed by (domain/models.py PayeeKeyType),
-- NULL for every other channel. Adding a nullable column without a default is a catalog change
-- only: no table rewrite, however large the ledger.
ALTER TABLE transactions
    ALTER COLUMN card_token    DROP NOT NULL,
    ALTER COLUMN card_last4    DROP NOT NULL,
    ALTER COLUMN currency      DROP NOT NULL,
    ALTER COLUMN channel       DROP NOT NULL,
    ALTER COLUMN merchant_id   DROP NOT NULL,
    ALTER COLUMN merchant_name DROP NOT NULL,
    ALTER COLUMN merchant_mcc  DROP NOT NULL,
    ALTER COLUMN city          DROP NOT NULL,
    ALTER COLUMN state         DROP NOT NULL,
    ALTER COLUMN lat           DROP NOT NULL,
    ALTER COLUMN lon           DROP NOT NULL,
    ALTER COLUMN device_id     DROP NOT NULL,
    ALTER COLUMN ip_address    DROP NOT NULL,
    ADD COLUMN payee_key_type  text
        CHECK (payee_key_type IN ('cpf', 'cnpj', 'email', 'phone', 'random'));

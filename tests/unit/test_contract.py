"""The transaction's fields are defined once, by domain/models.py: Transaction. Every other place
that lists them (the Flink DDL, the ledger's COPY columns, the fast parser's limits) is checked
here against the model, and a failure names the field and the place that disagrees. The
generator's wire is tied to the model byte for byte by test_generate_wire.py, the live table by
tests/integration/test_contract_schema.py."""

from __future__ import annotations

import re
import types
from decimal import Decimal
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import MaxLen, MinLen

from streamguard.decide import fastparse
from streamguard.domain.models import PayeeKeyType, Transaction, from_epoch_ms
from streamguard.rules import engine
from streamguard.store import ledger
from tests.factories import make_transaction

#: Fields of the message that are not columns of a transaction row.
NOT_COLUMNS = {"schema_version"}
#: The model's name for the event time, and the ledger's.
RENAMED = {"ts_ms": "event_time"}
FLINK_TYPES = {str: "STRING", Decimal: "DECIMAL(14, 2)", float: "DOUBLE", int: "BIGINT"}


def model_fields() -> list[str]:
    """The model's row fields, in declaration order."""
    return [name for name in Transaction.model_fields if name not in NOT_COLUMNS]


def optional(name: str) -> bool:
    """True when the model lets the field be missing or null."""
    annotation = Transaction.model_fields[name].annotation
    return get_origin(annotation) in (Union, types.UnionType) and type(None) in get_args(annotation)


def python_type(name: str) -> Any:
    """The field's value type, without None, Annotated's metadata or an enum (a str)."""
    annotation = Transaction.model_fields[name].annotation
    if optional(name):
        annotation = next(arg for arg in get_args(annotation) if arg is not type(None))
    if get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return getattr(annotation, "__supertype__", None) or (
        str if getattr(annotation, "__mro__", None) and issubclass(annotation, str) else annotation
    )


def length_limits(name: str) -> tuple[int, int] | None:
    """(min, max) length of a text field, if the model bounds it."""
    metadata = Transaction.model_fields[name].metadata
    most = next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)
    least = next((m.min_length for m in metadata if isinstance(m, MinLen)), 0)
    return None if most is None else (least, most)


def test_the_flink_ddl_declares_every_field_with_its_type_in_order() -> None:
    ddl = dict(engine._COLUMN_DDL)
    assert list(ddl) == model_fields(), "rules/engine.py: TRANSACTION_COLUMNS order or names"
    for name in model_fields():
        declared = ddl[name].split(None, 1)[1]
        expected = FLINK_TYPES[python_type(name)]
        assert declared == expected, f"{name}: rules/engine.py says {declared}, model {expected}"


def test_the_ledger_copies_every_field_in_the_model_order() -> None:
    expected = [RENAMED.get(name, name) for name in model_fields()] + ["kafka_append_at"]
    for place, columns in zip(expected, ledger.TX_COLUMNS, strict=True):
        assert place == columns, f"store/ledger.py: TX_COLUMNS has {columns} where model {place}"


def test_the_fast_parser_has_the_models_length_limits() -> None:
    patterns = fastparse._LINE.pattern.split("\t")
    columns = ledger.TX_COLUMNS[: len(patterns)]
    assert len(patterns) == len(model_fields()), "decide/fastparse.py: _LINE's column count"
    for column, pattern in zip(columns, patterns, strict=True):
        name = {v: k for k, v in RENAMED.items()}.get(column, column)
        limits = length_limits(name)
        if limits is not None:
            least, most = limits
            expected = fastparse._text(most, least)
            if optional(name):
                expected = fastparse.nullable(expected)
            assert pattern == expected, (
                f"{name}: decide/fastparse.py allows {pattern!r}, the model {least}..{most}"
            )


def test_the_fast_parser_takes_null_exactly_where_the_model_does() -> None:
    patterns = fastparse._LINE.pattern.split("\t")
    for column, pattern in zip(ledger.TX_COLUMNS, patterns, strict=False):
        name = {v: k for k, v in RENAMED.items()}.get(column, column)
        takes_null = pattern.endswith(f"|{fastparse._NULL})")
        assert takes_null == optional(name), (
            f"{name}: decide/fastparse.py null={takes_null}, the model optional={optional(name)}"
        )


def test_the_required_core_is_id_account_amount_and_event_time() -> None:
    required = [name for name in model_fields() if not optional(name)]
    assert required == ["transaction_id", "account_id", "amount", "ts_ms"]
    assert list(engine.REQUIRED_COLUMNS) == required, "rules/engine.py: REQUIRED_COLUMNS"


def test_the_ledger_row_and_its_stage_follow_the_copy_columns() -> None:
    """store/ledger.py's ledger_row and the stage table, column by column: every value distinct,
    so a swapped or forgotten field is named."""
    tx = make_transaction(payee_key_type=PayeeKeyType.EMAIL, currency="USD", lat=-23.5, lon=-46.6)
    row = ledger.ledger_row(tx, 1_700_000_000_999)
    assert len(row.copy) == len(ledger.TX_COLUMNS), "store/ledger.py: ledger_row's length"
    back = {v: k for k, v in RENAMED.items()}
    for column, value in zip(ledger.TX_COLUMNS, row.copy, strict=True):
        name = back.get(column, column)
        if name == "kafka_append_at":
            continue
        sent = getattr(tx, name)
        expected = from_epoch_ms(sent) if name == "ts_ms" else getattr(sent, "value", sent)
        assert value == expected, f"store/ledger.py: ledger_row has {value!r} for {column}"
    parts = re.split(r",(?![^(]*\))", ledger._STAGES["transactions"])  # not numeric(14, 2)'s
    stage = [part.split()[0] for part in parts]
    assert stage == list(ledger.TX_COLUMNS), "store/ledger.py: _STAGES['transactions'] columns"

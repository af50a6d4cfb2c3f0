-- Per-partition fencing for several decision instances in one consumer group.
--
-- Each instance claims the partitions Kafka assigns it: the claim sets the owner and bumps the
-- generation. Every batch's transaction first locks (FOR SHARE) the rows of the partitions it
-- read and checks that they still carry its owner and generation, so an instance that lost a
-- partition in a rebalance cannot commit rows or offsets for it: its batch rolls back. A claim
-- waits for the previous owner's open batch on that partition, then reads the offsets it left.
CREATE TABLE partition_owners (
    group_id    text        NOT NULL,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    owner       text        NOT NULL,
    generation  bigint      NOT NULL,
    claimed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (group_id, topic, partition)
);

package io.streamguard.flink;

import java.io.IOException;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * PREVIOUS_AMOUNT(amount): the amount of the account's transaction just before the current row,
 * or NULL for the first one. Meant for an unbounded event-time OVER window; it keeps two values.
 */
@FunctionHint(
        accumulator = @DataTypeHint(
                value = "RAW",
                bridgedTo = PreviousAmount.Last.class,
                rawSerializer = PreviousAmount.LastSerializer.class),
        output = @DataTypeHint(value = "DECIMAL(14, 2)", bridgedTo = DecimalData.class))
public class PreviousAmount extends AggregateFunction<DecimalData, PreviousAmount.Last> {

    /** The amounts of the last two rows. */
    public static class Last {
        public int seen;
        public long previousCents;
        public long lastCents;
        public boolean previousNull;
        public boolean lastNull;
    }

    /** The five fields, in order. */
    public static final class LastSerializer extends AccumulatorSerializer<Last> {

        @Override
        public Last createInstance() {
            return new Last();
        }

        @Override
        Last copyOf(Last from) {
            Last to = new Last();
            to.seen = from.seen;
            to.previousCents = from.previousCents;
            to.lastCents = from.lastCents;
            to.previousNull = from.previousNull;
            to.lastNull = from.lastNull;
            return to;
        }

        @Override
        public void serialize(Last last, DataOutputView target) throws IOException {
            target.writeInt(last.seen);
            target.writeLong(last.previousCents);
            target.writeLong(last.lastCents);
            target.writeBoolean(last.previousNull);
            target.writeBoolean(last.lastNull);
        }

        @Override
        public Last deserialize(DataInputView source) throws IOException {
            Last last = new Last();
            last.seen = source.readInt();
            last.previousCents = source.readLong();
            last.lastCents = source.readLong();
            last.previousNull = source.readBoolean();
            last.lastNull = source.readBoolean();
            return last;
        }

        @Override
        public TypeSerializerSnapshot<Last> snapshotConfiguration() {
            return new Snapshot();
        }

        /** Restores the serializer from a checkpoint; it has no configuration. */
        public static final class Snapshot extends SimpleTypeSerializerSnapshot<Last> {
            public Snapshot() {
                super(LastSerializer::new);
            }
        }
    }

    @Override
    public Last createAccumulator() {
        return new Last();
    }

    public void accumulate(
            Last acc,
            @DataTypeHint(value = "DECIMAL(14, 2)", bridgedTo = DecimalData.class) DecimalData amount) {
        acc.previousCents = acc.lastCents;
        acc.previousNull = acc.lastNull;
        acc.lastCents = amount == null ? 0 : amount.toUnscaledLong();
        acc.lastNull = amount == null;
        acc.seen = Math.min(acc.seen + 1, 2);
    }

    @Override
    public DecimalData getValue(Last acc) {
        return acc.seen < 2 || acc.previousNull
                ? null
                : DecimalData.fromUnscaledLong(acc.previousCents, 14, 2);
    }
}

package io.streamguard.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * PREVIOUS_AMOUNT(amount): the amount of the account's transaction just before the current row,
 * or NULL for the first one. Meant for an unbounded event-time OVER window; it keeps two values.
 */
@FunctionHint(
        accumulator = @DataTypeHint(value = "RAW", bridgedTo = PreviousAmount.Last.class),
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

package io.streamguard.flink;

import java.io.IOException;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.DecimalData;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * WINDOW_STATS(ts_ms, amount, transaction_id, window_ms): the account's transactions in the
 * trailing window that ends at the current row, current row included. A transaction belongs to
 * the window when it is less than window_ms older than the current one (the bound is exclusive:
 * "within 60 seconds" means less than 60 s apart).
 *
 * <p>Meant for {@code OVER (PARTITION BY account_id ORDER BY ts ROWS BETWEEN UNBOUNDED PRECEDING
 * AND CURRENT ROW)}: Flink feeds the rows in event-time order, so the window is a queue that
 * drops from its head. It keeps only the window's rows, whatever the length of the run.
 *
 * <p>Returns ROW(tx_count, amount_sum, first_ts_ms, first_transaction_id).
 */
@FunctionHint(
        accumulator = @DataTypeHint(
                value = "RAW",
                bridgedTo = WindowStats.Window.class,
                rawSerializer = WindowStats.WindowSerializer.class),
        output = @DataTypeHint(
                value = "ROW<tx_count BIGINT, amount_sum DECIMAL(18, 2), first_ts_ms BIGINT,"
                        + " first_transaction_id STRING>",
                bridgedTo = RowData.class))
public class WindowStats extends AggregateFunction<RowData, WindowStats.Window> {

    /** The rows in the window, oldest first, in a ring that grows only when it is full. */
    public static class Window {
        public long[] ts = new long[4];
        public long[] cents = new long[4];
        public byte[][] ids = new byte[4][];
        public int head;
        public int size;
        public long sumCents;

        void add(long t, long c, byte[] id) {
            if (size == ts.length) {
                grow();
            }
            int slot = (head + size) % ts.length;
            ts[slot] = t;
            cents[slot] = c;
            ids[slot] = id;
            size++;
            sumCents += c;
        }

        void dropOlderThan(long bound) {
            while (size > 0 && ts[head] <= bound) {
                sumCents -= cents[head];
                ids[head] = null;
                head = (head + 1) % ts.length;
                size--;
            }
        }

        private void grow() {
            int n = ts.length;
            long[] t = new long[n * 2];
            long[] c = new long[n * 2];
            byte[][] i = new byte[n * 2][];
            for (int k = 0; k < size; k++) {
                int from = (head + k) % n;
                t[k] = ts[from];
                c[k] = cents[from];
                i[k] = ids[from];
            }
            ts = t;
            cents = c;
            ids = i;
            head = 0;
        }
    }

    /** Writes the window's rows oldest first; a read-back window is exactly as large as needed. */
    public static final class WindowSerializer extends AccumulatorSerializer<Window> {

        @Override
        public Window createInstance() {
            return new Window();
        }

        @Override
        Window copyOf(Window from) {
            Window to = new Window();
            for (int k = 0; k < from.size; k++) {
                int slot = (from.head + k) % from.ts.length;
                to.add(from.ts[slot], from.cents[slot], from.ids[slot]);
            }
            return to;
        }

        @Override
        public void serialize(Window window, DataOutputView target) throws IOException {
            target.writeInt(window.size);
            for (int k = 0; k < window.size; k++) {
                int slot = (window.head + k) % window.ts.length;
                target.writeLong(window.ts[slot]);
                target.writeLong(window.cents[slot]);
                writeBytes(window.ids[slot], target);
            }
        }

        @Override
        public Window deserialize(DataInputView source) throws IOException {
            Window window = new Window();
            int size = source.readInt();
            for (int k = 0; k < size; k++) {
                window.add(source.readLong(), source.readLong(), readBytes(source));
            }
            return window;
        }

        @Override
        public TypeSerializerSnapshot<Window> snapshotConfiguration() {
            return new Snapshot();
        }

        /** Restores the serializer from a checkpoint; it has no configuration. */
        public static final class Snapshot extends SimpleTypeSerializerSnapshot<Window> {
            public Snapshot() {
                super(WindowSerializer::new);
            }
        }
    }

    @Override
    public Window createAccumulator() {
        return new Window();
    }

    public void accumulate(
            Window acc,
            Long tsMs,
            @DataTypeHint(value = "DECIMAL(14, 2)", bridgedTo = DecimalData.class) DecimalData amount,
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData transactionId,
            Long windowMs) {
        if (tsMs == null || amount == null || windowMs == null) {
            return;
        }
        acc.add(tsMs, amount.toUnscaledLong(), transactionId == null ? null : transactionId.toBytes());
        acc.dropOlderThan(tsMs - windowMs);
    }

    @Override
    public RowData getValue(Window acc) {
        if (acc.size == 0) {
            return GenericRowData.of(0L, DecimalData.fromUnscaledLong(0, 18, 2), null, null);
        }
        return GenericRowData.of(
                (long) acc.size,
                DecimalData.fromUnscaledLong(acc.sumCents, 18, 2),
                acc.ts[acc.head],
                acc.ids[acc.head] == null ? null : StringData.fromBytes(acc.ids[acc.head]));
    }
}

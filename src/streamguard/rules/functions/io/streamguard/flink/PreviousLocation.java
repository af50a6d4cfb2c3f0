package io.streamguard.flink;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.data.GenericRowData;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.data.StringData;
import org.apache.flink.table.functions.AggregateFunction;

/**
 * PREVIOUS_LOCATION(lat, lon, ts_ms, transaction_id): the account's last located transaction
 * before the current row (rows without a location are skipped), or NULL for the first one.
 *
 * <p>Meant for an unbounded event-time OVER window like WINDOW_STATS; it keeps two rows.
 * Returns ROW(lat, lon, ts_ms, transaction_id).
 */
@FunctionHint(
        accumulator = @DataTypeHint(value = "RAW", bridgedTo = PreviousLocation.Last.class),
        output = @DataTypeHint(
                value = "ROW<lat DOUBLE, lon DOUBLE, ts_ms BIGINT, transaction_id STRING>",
                bridgedTo = RowData.class))
public class PreviousLocation extends AggregateFunction<RowData, PreviousLocation.Last> {

    /** The last two located rows; `currentLocated` says whether the current row is the last. */
    public static class Last {
        public int located;
        public double previousLat;
        public double previousLon;
        public long previousTs;
        public byte[] previousId;
        public double lastLat;
        public double lastLon;
        public long lastTs;
        public byte[] lastId;
        public boolean currentLocated;
    }

    @Override
    public Last createAccumulator() {
        return new Last();
    }

    public void accumulate(
            Last acc,
            Double lat,
            Double lon,
            Long tsMs,
            @DataTypeHint(value = "STRING", bridgedTo = StringData.class) StringData transactionId) {
        acc.currentLocated = lat != null && lon != null && tsMs != null;
        if (acc.currentLocated) {
            acc.previousLat = acc.lastLat;
            acc.previousLon = acc.lastLon;
            acc.previousTs = acc.lastTs;
            acc.previousId = acc.lastId;
            acc.lastLat = lat;
            acc.lastLon = lon;
            acc.lastTs = tsMs;
            acc.lastId = transactionId == null ? null : transactionId.toBytes();
            acc.located = Math.min(acc.located + 1, 2);
        }
    }

    @Override
    public RowData getValue(Last acc) {
        if (acc.currentLocated) {
            return acc.located < 2
                    ? null
                    : row(acc.previousLat, acc.previousLon, acc.previousTs, acc.previousId);
        }
        return acc.located < 1 ? null : row(acc.lastLat, acc.lastLon, acc.lastTs, acc.lastId);
    }

    private static RowData row(double lat, double lon, long ts, byte[] id) {
        return GenericRowData.of(lat, lon, ts, id == null ? null : StringData.fromBytes(id));
    }
}

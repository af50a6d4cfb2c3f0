package io.streamguard.flink;

import java.io.IOException;
import org.apache.flink.api.common.typeutils.SimpleTypeSerializerSnapshot;
import org.apache.flink.api.common.typeutils.TypeSerializerSnapshot;
import org.apache.flink.core.memory.DataInputView;
import org.apache.flink.core.memory.DataOutputView;
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
        accumulator = @DataTypeHint(
                value = "RAW",
                bridgedTo = PreviousLocation.Last.class,
                rawSerializer = PreviousLocation.LastSerializer.class),
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

    /** The two located rows and the flags, in order; the ids are shared, never changed. */
    public static final class LastSerializer extends AccumulatorSerializer<Last> {

        @Override
        public Last createInstance() {
            return new Last();
        }

        @Override
        Last copyOf(Last from) {
            Last to = new Last();
            to.located = from.located;
            to.previousLat = from.previousLat;
            to.previousLon = from.previousLon;
            to.previousTs = from.previousTs;
            to.previousId = from.previousId;
            to.lastLat = from.lastLat;
            to.lastLon = from.lastLon;
            to.lastTs = from.lastTs;
            to.lastId = from.lastId;
            to.currentLocated = from.currentLocated;
            return to;
        }

        @Override
        public void serialize(Last last, DataOutputView target) throws IOException {
            target.writeInt(last.located);
            target.writeDouble(last.previousLat);
            target.writeDouble(last.previousLon);
            target.writeLong(last.previousTs);
            writeBytes(last.previousId, target);
            target.writeDouble(last.lastLat);
            target.writeDouble(last.lastLon);
            target.writeLong(last.lastTs);
            writeBytes(last.lastId, target);
            target.writeBoolean(last.currentLocated);
        }

        @Override
        public Last deserialize(DataInputView source) throws IOException {
            Last last = new Last();
            last.located = source.readInt();
            last.previousLat = source.readDouble();
            last.previousLon = source.readDouble();
            last.previousTs = source.readLong();
            last.previousId = readBytes(source);
            last.lastLat = source.readDouble();
            last.lastLon = source.readDouble();
            last.lastTs = source.readLong();
            last.lastId = readBytes(source);
            last.currentLocated = source.readBoolean();
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

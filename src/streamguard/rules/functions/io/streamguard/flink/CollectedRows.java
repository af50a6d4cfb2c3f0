package io.streamguard.flink;

import java.math.BigDecimal;
import java.util.Iterator;
import java.util.Map;
import org.apache.flink.types.Row;

/**
 * Hands a query's collected rows to Python many at a time, as JSON arrays one per line. pyflink's
 * own iterator makes about a dozen gateway calls per row; a backtest that collects its alerts that
 * way kept the Python side busy for the whole job, and the collect sink's full buffer then held
 * the job back. Decimals travel as strings, so no amount passes through a float.
 */
public final class CollectedRows {

    private CollectedRows() {}

    /** Up to `max` rows of `rows` as JSON lines; "" once the rows are exhausted. */
    public static String next(Iterator<Row> rows, int max) {
        StringBuilder out = new StringBuilder();
        for (int count = 0; count < max && rows.hasNext(); count++) {
            Row row = rows.next();
            out.append('[');
            for (int i = 0; i < row.getArity(); i++) {
                if (i > 0) {
                    out.append(',');
                }
                write(out, row.getField(i));
            }
            out.append("]\n");
        }
        return out.toString();
    }

    private static void write(StringBuilder out, Object value) {
        if (value == null) {
            out.append("null");
        } else if (value instanceof BigDecimal) {
            quote(out, ((BigDecimal) value).toPlainString());
        } else if (value instanceof Number || value instanceof Boolean) {
            out.append(value);
        } else if (value instanceof Map) {
            out.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> entry : ((Map<?, ?>) value).entrySet()) {
                if (!first) {
                    out.append(',');
                }
                first = false;
                quote(out, String.valueOf(entry.getKey()));
                out.append(':');
                write(out, entry.getValue());
            }
            out.append('}');
        } else {
            quote(out, value.toString());
        }
    }

    private static void quote(StringBuilder out, String text) {
        out.append('"');
        for (int i = 0; i < text.length(); i++) {
            char c = text.charAt(i);
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        out.append('"');
    }
}

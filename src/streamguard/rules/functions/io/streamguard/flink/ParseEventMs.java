package io.streamguard.flink;

import java.time.DateTimeException;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * PARSE_EVENT_MS(text): epoch milliseconds of an ISO-8601 timestamp, naive meaning UTC and an
 * explicit offset honoured; NULL for anything else. The original system's `timestamp` field. The
 * grammar and arithmetic are domain/original.py's parse_event_ms, line for line, so the rules
 * and the decision service give a message the same event time.
 */
public class ParseEventMs extends ScalarFunction {

    private static final Pattern ISO =
            Pattern.compile(
                    "([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\\.([0-9]{1,9}))?"
                            + "(Z|[+-][0-9]{2}:?[0-9]{2})?");

    public Long eval(String text) {
        if (text == null) {
            return null;
        }
        Matcher m = ISO.matcher(text.strip());
        if (!m.matches()) {
            return null;
        }
        try {
            LocalDateTime moment =
                    LocalDateTime.of(
                            Integer.parseInt(m.group(1)),
                            Integer.parseInt(m.group(2)),
                            Integer.parseInt(m.group(3)),
                            Integer.parseInt(m.group(4)),
                            Integer.parseInt(m.group(5)),
                            Integer.parseInt(m.group(6)));
            String fraction = m.group(7) == null ? "0" : m.group(7);
            String millis = (fraction + "00").substring(0, 3);
            Long offset = offsetMs(m.group(8));
            if (offset == null) {
                return null;
            }
            return moment.toEpochSecond(ZoneOffset.UTC) * 1000
                    + Integer.parseInt(millis)
                    - offset;
        } catch (DateTimeException e) {
            return null;
        }
    }

    private static Long offsetMs(String offset) {
        if (offset == null || offset.equals("Z")) {
            return 0L;
        }
        String digits = offset.substring(1).replace(":", "");
        int hours = Integer.parseInt(digits.substring(0, 2));
        int minutes = Integer.parseInt(digits.substring(2));
        if (hours > 18 || minutes > 59) {
            return null;
        }
        long ms = (hours * 60L + minutes) * 60_000L;
        return offset.charAt(0) == '-' ? -ms : ms;
    }
}

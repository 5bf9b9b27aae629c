// Reads every file named on the command line with java.util.Properties.load, the
// way DJL Serving reads serving.properties, and prints what it read: one line per
// file ("FILE <name>"), then one line per entry with the key and the value as
// UTF-16 code units in hex (so any character survives the trip), or "ERROR".
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.util.Properties;
import java.util.TreeSet;

public class ReadProperties {
    private static String hex(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            out.append(String.format("%04x", (int) s.charAt(i)));
        }
        return out.toString();
    }

    public static void main(String[] args) throws Exception {
        for (String name : args) {
            System.out.println("FILE " + name);
            Properties props = new Properties();
            try (Reader reader = new InputStreamReader(new FileInputStream(name), StandardCharsets.UTF_8)) {
                props.load(reader);
            } catch (IllegalArgumentException e) {
                System.out.println("ERROR");
                continue;
            }
            for (String key : new TreeSet<>(props.stringPropertyNames())) {
                System.out.println("ENTRY " + hex(key) + " " + hex(props.getProperty(key)));
            }
        }
    }
}

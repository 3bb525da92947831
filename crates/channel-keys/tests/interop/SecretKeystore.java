// Writes a PKCS12 keystore holding one AES secret key of given bytes, with Java's own
// KeyStore (the same code keytool uses), so that a test can check that Sluice reads exactly
// these bytes. keytool itself cannot import a known secret key.
//
// Usage: java SecretKeystore.java OUT.p12 ALIAS STOREPASS KEY-HEX
import java.io.FileOutputStream;
import java.security.KeyStore;
import java.util.HexFormat;
import javax.crypto.spec.SecretKeySpec;

public class SecretKeystore {
    public static void main(String[] args) throws Exception {
        char[] password = args[2].toCharArray();
        byte[] key = HexFormat.of().parseHex(args[3]);
        KeyStore ks = KeyStore.getInstance("PKCS12");
        ks.load(null, null);
        ks.setEntry(args[1], new KeyStore.SecretKeyEntry(new SecretKeySpec(key, "AES")),
                new KeyStore.PasswordProtection(password));
        try (FileOutputStream out = new FileOutputStream(args[0])) {
            ks.store(out, password);
        }
    }
}

/*
 * An independent HTTPS client for the TLS interop tests: JSSE, the TLS stack Apache Flume itself
 * runs on, through java.net.http.HttpClient. Java 11+ runs this single file directly:
 *
 *   java Client.java URL TRUSTSTORE PASSWORD TYPE BODY_FILE
 *
 * It trusts only the certificates in TRUSTSTORE (made by keytool, type PKCS12 or JKS), checks
 * the server's name against its certificate (HttpClient does so by default), POSTs the
 * contents of BODY_FILE as application/json to URL, and prints two lines:
 *
 *   status 200
 *   protocol TLSv1.3
 *
 * Exits 0 when an answer came (whatever its status), 1 on any error (the handshake included),
 * with the exception on stderr.
 */

import java.io.FileInputStream;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.KeyStore;
import java.time.Duration;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;

public class Client {
    public static void main(String[] args) throws Exception {
        if (args.length != 5) {
            System.err.println("usage: java Client.java URL TRUSTSTORE PASSWORD TYPE BODY_FILE");
            System.exit(2);
        }
        try {
            run(args[0], args[1], args[2].toCharArray(), args[3], Path.of(args[4]));
        } catch (Exception e) {
            e.printStackTrace();
            System.exit(1);
        }
    }

    private static void run(String url, String truststore, char[] password, String type, Path body)
            throws Exception {
        KeyStore trusted = KeyStore.getInstance(type);
        try (InputStream in = new FileInputStream(truststore)) {
            trusted.load(in, password);
        }
        TrustManagerFactory tmf =
                TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
        tmf.init(trusted);
        SSLContext tls = SSLContext.getInstance("TLS");
        tls.init(null, tmf.getTrustManagers(), null);

        HttpClient client = HttpClient.newBuilder()
                .sslContext(tls)
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(20))
                .build();
        HttpRequest request = HttpRequest.newBuilder(URI.create(url))
                .timeout(Duration.ofSeconds(20))
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofByteArray(Files.readAllBytes(body)))
                .build();
        HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println("status " + response.statusCode());
        System.out.println(
                "protocol " + response.sslSession().map(s -> s.getProtocol()).orElse("none"));
    }
}

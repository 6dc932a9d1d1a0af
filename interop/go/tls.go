// The TLS checks (see interop/README.md): amqps:// with DialTLS and a
// tls.Config trusting our CA, EXTERNAL with DialTLS_ExternalAuth and the
// client certificate, and a client trusting another CA being refused.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// skipExit is the exit status runner.py counts as skipped.
const skipExit = 77

type tlsSettings struct{ url, ca, otherCA, cert, key, externalUser string }

func tlsEnv() tlsSettings {
	if os.Getenv("AMQPS_URL") == "" {
		fmt.Println("skipped: no AMQPS_URL")
		os.Exit(skipExit)
	}
	var missing []string
	get := func(name string) string {
		v := os.Getenv(name)
		if v == "" {
			missing = append(missing, name)
		}
		return v
	}
	s := tlsSettings{get("AMQPS_URL"), get("TLS_CA_FILE"), get("TLS_OTHER_CA_FILE"),
		get("TLS_CLIENT_CERT"), get("TLS_CLIENT_KEY"), get("TLS_EXTERNAL_USER")}
	check(len(missing) == 0, "AMQPS_URL is set but not %s", strings.Join(missing, ", "))
	return s
}

func tlsConfig(caFile string) *tls.Config {
	pem, err := os.ReadFile(caFile)
	must(err, "read "+caFile)
	pool := x509.NewCertPool()
	check(pool.AppendCertsFromPEM(pem), "no certificate in %s", caFile)
	// ServerName is left empty: amqp091-go sets it from the URL's host.
	return &tls.Config{RootCAs: pool}
}

func tlsVersion(conn *amqp.Connection) string {
	switch v := conn.ConnectionState().Version; v {
	case tls.VersionTLS12:
		return "TLS 1.2"
	case tls.VersionTLS13:
		return "TLS 1.3"
	default:
		fail("negotiated TLS version %#x", v)
		return ""
	}
}

// tlsRoundTrip publishes (confirmed) to a temporary queue and consumes the
// messages back; userID, if set, must come back as sent.
func tlsRoundTrip(conn *amqp.Connection, userID string) {
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	big := make([]byte, oneMiB)
	_, err := rand.Read(big)
	must(err, "random body")
	sent := [][]byte{[]byte("over tls"), big}
	for _, body := range sent {
		publish(ch, "", q, amqp.Publishing{Body: body, UserId: userID})
		confirm(confirms)
	}
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	must(err, "consume")
	for i, want := range sent {
		select {
		case d := <-deliveries:
			check(bytes.Equal(d.Body, want), "message %d: consumed %s, sent %s", i, describe(d.Body), describe(want))
			check(d.UserId == userID, "user_id came back as %q, sent %q", d.UserId, userID)
			must(d.Ack(false), "ack")
		case <-time.After(waitMessage):
			fail("message %d not consumed within %v", i, waitMessage)
		}
	}
	must(ch.Close(), "close channel")
}

func cTLSConnect() string {
	env := tlsEnv()
	conn, err := amqp.DialTLS(env.url, tlsConfig(env.ca))
	must(err, "DialTLS")
	defer conn.Close()
	tlsRoundTrip(conn, "")
	return tlsVersion(conn) + ", PLAIN login, publish + consume"
}

func cTLSExternal() string {
	env := tlsEnv()
	config := tlsConfig(env.ca)
	cert, err := tls.LoadX509KeyPair(env.cert, env.key)
	must(err, "load the client certificate")
	config.Certificates = []tls.Certificate{cert}
	u, err := url.Parse(env.url)
	must(err, "parse AMQPS_URL")
	u.User = nil
	conn, err := amqp.DialTLS_ExternalAuth(u.String(), config)
	must(err, "DialTLS_ExternalAuth")
	defer conn.Close()
	// user_id must equal the connection's user: this holds only if EXTERNAL
	// logged us in as the certificate's subject.
	tlsRoundTrip(conn, env.externalUser)
	return fmt.Sprintf("%s, EXTERNAL as %q", tlsVersion(conn), env.externalUser)
}

func cTLSUntrustedCA() string {
	env := tlsEnv()
	started := time.Now()
	conn, err := amqp.DialTLS(env.url, tlsConfig(env.otherCA))
	if err == nil {
		conn.Close()
		fail("connected although the client trusts another CA")
	}
	took := time.Since(started)
	var unknown x509.UnknownAuthorityError
	check(errors.As(err, &unknown) || strings.Contains(err.Error(), "certificate signed by unknown authority"),
		"expected a certificate verification error, got %T: %v", err, err)
	check(took < 10*time.Second, "the refusal took %v", took)
	return fmt.Sprintf("refused in %v: %v", took.Round(time.Millisecond), err)
}

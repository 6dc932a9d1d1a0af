// The client checks with rabbitmq/amqp091-go (Debian's
// golang-github-rabbitmq-amqp091-go-dev), plus the Go side of the
// cross-language RPC scenarios. See interop/README.md.
//
// Usage: interop-go CHECK
//
//	interop-go rpc-server QUEUE COUNT
//	interop-go rpc-client QUEUE N...
//
// A check exits 0 if it held; otherwise its last output line is the reason.
// Built by interop/install.sh in GOPATH mode (GO111MODULE=off) against
// /usr/share/gocode, so no module proxy is involved.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"sort"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

const (
	deadline    = 25 * time.Second
	heartbeat   = 1 * time.Second
	pause       = 5 * time.Second
	oneMiB      = 1 << 20
	waitMessage = 5 * time.Second
)

type failure string

func fail(format string, args ...interface{}) {
	panic(failure(fmt.Sprintf(format, args...)))
}

func must(err error, what string) {
	if err != nil {
		fail("%s: %v", what, err)
	}
}

func check(cond bool, format string, args ...interface{}) {
	if !cond {
		fail(format, args...)
	}
}

func amqpURL() string {
	u := os.Getenv("AMQP_URL")
	if u == "" {
		fmt.Println("AMQP_URL is not set")
		os.Exit(2)
	}
	return u
}

func user() string {
	u, err := url.Parse(amqpURL())
	must(err, "parse AMQP_URL")
	return u.User.Username()
}

func connect() *amqp.Connection {
	conn, err := amqp.DialConfig(amqpURL(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	must(err, "connect")
	return conn
}

func channel(conn *amqp.Connection) *amqp.Channel {
	ch, err := conn.Channel()
	must(err, "open channel")
	return ch
}

func unique(kind string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("interop.%s.%x", kind, b)
}

func tempQueue(ch *amqp.Channel) string {
	q, err := ch.QueueDeclare("", false, false, true, false, nil)
	must(err, "declare a server-named queue")
	return q.Name
}

func publish(ch *amqp.Channel, exchange, key string, msg amqp.Publishing) {
	ctx, cancel := context.WithTimeout(context.Background(), waitMessage)
	defer cancel()
	must(ch.PublishWithContext(ctx, exchange, key, false, false, msg), "publish")
}

// confirmedChannel puts the channel in confirm mode; confirm() then waits for the next ack.
func confirmedChannel(conn *amqp.Connection) (*amqp.Channel, chan amqp.Confirmation) {
	ch := channel(conn)
	must(ch.Confirm(false), "confirm.select")
	return ch, ch.NotifyPublish(make(chan amqp.Confirmation, 1000))
}

func confirm(confirms chan amqp.Confirmation) {
	select {
	case c := <-confirms:
		check(c.Ack, "publish %d was nacked", c.DeliveryTag)
	case <-time.After(waitMessage):
		fail("no publisher confirm within %v", waitMessage)
	}
}

func getOne(ch *amqp.Channel, q string, autoAck bool) amqp.Delivery {
	end := time.Now().Add(waitMessage)
	for time.Now().Before(end) {
		d, ok, err := ch.Get(q, autoAck)
		must(err, "basic.get")
		if ok {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	fail("no message arrived in %s within %v", q, waitMessage)
	return amqp.Delivery{}
}

func describe(b []byte) string {
	if len(b) == 0 {
		return "0 bytes"
	}
	n := len(b)
	if n > 8 {
		n = 8
	}
	return fmt.Sprintf("%d bytes starting %x", len(b), b[:n])
}

// ---------------------------------------------------------------------------

func cConnect() string {
	u, err := url.Parse(amqpURL())
	must(err, "parse AMQP_URL")
	pw, _ := u.User.Password()
	conn, err := amqp.DialConfig(fmt.Sprintf("amqp://%s", u.Host), amqp.Config{
		SASL:  []amqp.Authentication{&amqp.PlainAuth{Username: u.User.Username(), Password: pw}},
		Vhost: "/",
		Dial:  amqp.DefaultDial(5 * time.Second),
	})
	must(err, "connect")
	ch := channel(conn)
	must(ch.Close(), "channel.close")
	product := conn.Properties["product"]
	must(conn.Close(), "connection.close")
	check(conn.IsClosed(), "connection not closed")
	return fmt.Sprintf("server product %v", product)
}

func cWrongPassword() string {
	u, err := url.Parse(amqpURL())
	must(err, "parse AMQP_URL")
	pw, _ := u.User.Password()
	u.User = url.UserPassword(u.User.Username(), pw+"-wrong")
	conn, err := amqp.DialConfig(u.String(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err == nil {
		conn.Close()
		fail("connected with a wrong password")
	}
	check(err == amqp.ErrCredentials, "expected amqp.ErrCredentials (403), got %#v", err)
	return err.Error()
}

func drain(ch *amqp.Channel, q string) []string {
	var got []string
	for {
		d, ok, err := ch.Get(q, true)
		must(err, "basic.get")
		if !ok {
			return got
		}
		got = append(got, string(d.Body))
	}
}

func cExchangeTypes() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	names := map[string]string{}
	for _, kind := range []string{"direct", "fanout", "topic", "headers"} {
		names[kind] = unique(kind)
		must(ch.ExchangeDeclare(names[kind], kind, false, true, false, false, nil), "declare "+kind)
		defer ch.ExchangeDelete(names[kind], false, false)
	}
	q := map[string]string{}
	for _, k := range []string{"direct", "fanout1", "fanout2", "topic", "h_all", "h_any"} {
		q[k] = tempQueue(ch)
	}
	must(ch.QueueBind(q["direct"], "black", names["direct"], false, nil), "bind")
	must(ch.QueueBind(q["fanout1"], "", names["fanout"], false, nil), "bind")
	must(ch.QueueBind(q["fanout2"], "", names["fanout"], false, nil), "bind")
	must(ch.QueueBind(q["topic"], "*.orange.#", names["topic"], false, nil), "bind")
	must(ch.QueueBind(q["h_all"], "", names["headers"], false,
		amqp.Table{"x-match": "all", "format": "pdf", "type": "report"}), "bind")
	must(ch.QueueBind(q["h_any"], "", names["headers"], false,
		amqp.Table{"x-match": "any", "format": "pdf", "type": "report"}), "bind")
	type pub struct {
		kind, key string
		headers   amqp.Table
		body      string
	}
	for _, p := range []pub{
		{"direct", "black", nil, "direct-hit"}, {"direct", "white", nil, "direct-miss"},
		{"fanout", "ignored", nil, "fanout"},
		{"topic", "quick.orange.rabbit.x", nil, "topic-hit"}, {"topic", "quick.brown.fox", nil, "topic-miss"},
		{"headers", "", amqp.Table{"format": "pdf", "type": "report"}, "headers-both"},
		{"headers", "", amqp.Table{"format": "pdf", "type": "log"}, "headers-one"},
		{"headers", "", amqp.Table{"format": "zip"}, "headers-none"},
	} {
		publish(ch, names[p.kind], p.key, amqp.Publishing{Headers: p.headers, Body: []byte(p.body)})
		confirm(confirms)
	}
	want := map[string][]string{"direct": {"direct-hit"}, "fanout1": {"fanout"}, "fanout2": {"fanout"},
		"topic": {"topic-hit"}, "h_all": {"headers-both"}, "h_any": {"headers-both", "headers-one"}}
	for k, w := range want {
		got := drain(ch, q[k])
		check(reflect.DeepEqual(got, w), "queue bound for %s: got %q, expected %q", k, got, w)
	}
	return ""
}

func cBodies() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	big := make([]byte, oneMiB)
	_, _ = rand.Read(big)
	for _, c := range []struct {
		label string
		body  []byte
	}{{"empty", []byte{}}, {"one byte", []byte{0}}, {"1 MiB", big}} {
		publish(ch, "", q, amqp.Publishing{Body: c.body})
		confirm(confirms)
		got := getOne(ch, q, true).Body
		check(bytes.Equal(got, c.body), "%s body: got %s, sent %s", c.label, describe(got), describe(c.body))
	}
	return ""
}

// headers has every field type amqp091-go 1.5.0 can encode; it has no
// encoding for unsigned 16/32-bit ('u', 'i').
func headers() amqp.Table {
	return amqp.Table{
		"string":       "h\u00e9llo, w\u00f6rld",
		"empty-string": "",
		"true":         true,
		"false":        false,
		"int8":         int8(-128),
		"uint8":        uint8(255),
		"int16":        int16(-32768),
		"int32":        int32(-2147483648),
		"int64":        int64(-9223372036854775808),
		"float32":      float32(0.25),
		"float64":      float64(1.5),
		"decimal":      amqp.Decimal{Scale: 2, Value: 314},
		"timestamp":    time.Unix(1700000000, 0),
		"bytes":        []byte{0, 1, 0xfe, 0xff},
		"void":         nil,
		"array":        []interface{}{int32(1), "two", true, amqp.Table{"k": "v"}, []interface{}{int64(3), int8(4)}},
		"nested": amqp.Table{"level1": amqp.Table{"level2": amqp.Table{"n": int32(42), "s": "deep"}},
			"list": []interface{}{"a", int16(1)}},
	}
}

// same compares decoded header values including their Go types (so a
// change of integer width on the way is caught).
func same(got, want interface{}) bool {
	if wt, ok := want.(time.Time); ok {
		gt, ok := got.(time.Time)
		return ok && gt.Equal(wt)
	}
	switch w := want.(type) {
	case amqp.Table:
		g, ok := got.(amqp.Table)
		if !ok || len(g) != len(w) {
			return false
		}
		for k := range w {
			if !same(g[k], w[k]) {
				return false
			}
		}
		return true
	case []interface{}:
		g, ok := got.([]interface{})
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !same(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

func cProperties() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	ts := time.Unix(1700000000, 0)
	sent := amqp.Publishing{
		ContentType: "application/x-interop", ContentEncoding: "x-identity", Headers: headers(),
		DeliveryMode: 2, Priority: 5, CorrelationId: "corr-7f3a", ReplyTo: "interop.reply-to",
		Expiration: "60000", MessageId: "msg-0001", Timestamp: ts, Type: "interop.event",
		UserId: user(), AppId: "interop-suite", Body: []byte("props"),
	}
	publish(ch, "", q, sent)
	confirm(confirms)
	d := getOne(ch, q, true)
	pairs := [][3]interface{}{
		{"content_type", d.ContentType, sent.ContentType}, {"content_encoding", d.ContentEncoding, sent.ContentEncoding},
		{"delivery_mode", d.DeliveryMode, sent.DeliveryMode}, {"priority", d.Priority, sent.Priority},
		{"correlation_id", d.CorrelationId, sent.CorrelationId}, {"reply_to", d.ReplyTo, sent.ReplyTo},
		{"expiration", d.Expiration, sent.Expiration}, {"message_id", d.MessageId, sent.MessageId},
		{"type", d.Type, sent.Type}, {"user_id", d.UserId, sent.UserId}, {"app_id", d.AppId, sent.AppId},
	}
	for _, p := range pairs {
		check(p[1] == p[2], "%s: got %#v, sent %#v", p[0], p[1], p[2])
	}
	check(d.Timestamp.Equal(ts), "timestamp: got %v, sent %v", d.Timestamp, ts)
	want := headers()
	keys := func(t amqp.Table) []string {
		var ks []string
		for k := range t {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		return ks
	}
	check(reflect.DeepEqual(keys(d.Headers), keys(want)), "header keys: got %v, sent %v", keys(d.Headers), keys(want))
	for k, w := range want {
		check(same(d.Headers[k], w), "header %q: got %#v (%T), sent %#v (%T)", k, d.Headers[k], d.Headers[k], w, w)
	}
	return ""
}

func cConfirms() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	for i := 0; i < 200; i++ {
		publish(ch, "", q, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
	}
	seen := map[uint64]bool{}
	for len(seen) < 200 {
		select {
		case c := <-confirms:
			check(c.Ack, "publish %d nacked", c.DeliveryTag)
			seen[c.DeliveryTag] = true
		case <-time.After(waitMessage):
			fail("%d of 200 publishes confirmed", len(seen))
		}
	}
	for i := uint64(1); i <= 200; i++ {
		check(seen[i], "no confirm for delivery tag %d", i)
	}
	st, err := ch.QueueDeclarePassive(q, false, true, true, false, nil)
	must(err, "passive declare")
	check(st.Messages == 200, "%d messages in the queue after 200 confirmed publishes", st.Messages)
	return ""
}

func cBasicGet() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	for _, b := range []string{"first", "second"} {
		publish(ch, "", q, amqp.Publishing{Body: []byte(b)})
		confirm(confirms)
	}
	d, ok, err := ch.Get(q, false)
	must(err, "basic.get")
	check(ok && string(d.Body) == "first" && d.MessageCount == 1, "first get: ok=%v %q count=%d", ok, d.Body, d.MessageCount)
	check(!d.Redelivered, "first delivery flagged redelivered")
	must(d.Ack(false), "ack")
	d, ok, err = ch.Get(q, true)
	must(err, "basic.get")
	check(ok && string(d.Body) == "second" && d.MessageCount == 0, "second get: ok=%v %q count=%d", ok, d.Body, d.MessageCount)
	_, ok, err = ch.Get(q, true)
	must(err, "basic.get")
	check(!ok, "get on an empty queue returned a message")
	return ""
}

func cNackRequeue() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	publish(ch, "", q, amqp.Publishing{Body: []byte("again")})
	confirm(confirms)
	d := getOne(ch, q, false)
	check(!d.Redelivered, "first delivery flagged redelivered")
	must(d.Nack(false, true), "nack")
	d = getOne(ch, q, false)
	check(string(d.Body) == "again" && d.Redelivered, "after nack(requeue): %q redelivered=%v", d.Body, d.Redelivered)
	must(d.Ack(false), "ack")
	return ""
}

func cReject() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	publish(ch, "", q, amqp.Publishing{Body: []byte("requeue-me")})
	confirm(confirms)
	must(getOne(ch, q, false).Reject(true), "reject")
	d := getOne(ch, q, false)
	check(string(d.Body) == "requeue-me" && d.Redelivered, "after reject(requeue): %q redelivered=%v", d.Body, d.Redelivered)
	must(d.Reject(false), "reject")
	time.Sleep(200 * time.Millisecond)
	st, err := ch.QueueDeclarePassive(q, false, true, true, false, nil)
	must(err, "passive declare")
	check(st.Messages == 0, "reject(requeue=false) left %d message(s)", st.Messages)
	return ""
}

func collect(deliveries <-chan amqp.Delivery, into *[]amqp.Delivery, wait time.Duration) {
	end := time.After(wait)
	for {
		select {
		case d := <-deliveries:
			*into = append(*into, d)
		case <-end:
			return
		}
	}
}

func cPrefetch() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	for i := 0; i < 10; i++ {
		publish(ch, "", q, amqp.Publishing{Body: []byte(fmt.Sprint(i))})
		confirm(confirms)
	}
	must(ch.Qos(3, 0, false), "basic.qos")
	deliveries, err := ch.Consume(q, "", false, false, false, false, nil)
	must(err, "consume")
	var got []amqp.Delivery
	collect(deliveries, &got, 500*time.Millisecond)
	check(len(got) == 3, "with prefetch_count=3, %d unacked deliveries (expected 3)", len(got))
	must(got[0].Ack(false), "ack")
	collect(deliveries, &got, 500*time.Millisecond)
	check(len(got) == 4, "after one ack, %d deliveries (expected 4)", len(got))
	must(got[3].Ack(true), "ack multiple")
	collect(deliveries, &got, 500*time.Millisecond)
	check(len(got) == 7, "after ack(multiple) of all, %d deliveries (expected 7)", len(got))
	return ""
}

func cConsumerCancel() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	deliveries, err := ch.Consume(q, "interop-consumer", true, false, false, false, nil)
	must(err, "consume")
	publish(ch, "", q, amqp.Publishing{Body: []byte("before")})
	confirm(confirms)
	select {
	case d := <-deliveries:
		check(string(d.Body) == "before", "got %q", d.Body)
	case <-time.After(waitMessage):
		fail("consumer got nothing")
	}
	must(ch.Cancel("interop-consumer", false), "basic.cancel")
	// amqp091-go closes the deliveries channel once cancel-ok arrives.
	select {
	case d, open := <-deliveries:
		check(!open, "got %q after cancel", d.Body)
	case <-time.After(waitMessage):
		fail("deliveries channel not closed after basic.cancel")
	}
	publish(ch, "", q, amqp.Publishing{Body: []byte("after")})
	confirm(confirms)
	st, err := ch.QueueDeclarePassive(q, false, true, true, false, nil)
	must(err, "passive declare")
	check(st.Messages == 1, "%d messages left after cancel (expected 1)", st.Messages)

	// The broker cancels a consumer whose queue is deleted.
	q2 := unique("cancel")
	_, err = ch.QueueDeclare(q2, false, false, false, false, nil)
	must(err, "declare")
	cancels := ch.NotifyCancel(make(chan string, 1))
	deliveries2, err := ch.Consume(q2, "doomed", true, false, false, false, nil)
	must(err, "consume")
	other := channel(conn)
	_, err = other.QueueDelete(q2, false, false, false)
	must(err, "queue.delete")
	select {
	case tag := <-cancels:
		check(tag == "doomed", "basic.cancel for %q, expected doomed", tag)
	case <-time.After(3 * time.Second):
		fail("no broker basic.cancel after the queue was deleted")
	}
	select {
	case _, open := <-deliveries2:
		check(!open, "delivery after the broker's cancel")
	case <-time.After(time.Second):
		fail("deliveries channel not closed after the broker's cancel")
	}
	check(!ch.IsClosed(), "channel closed after the broker's basic.cancel")
	return ""
}

func cMandatoryReturn() string {
	conn := connect()
	defer conn.Close()
	ch, confirms := confirmedChannel(conn)
	returns := ch.NotifyReturn(make(chan amqp.Return, 1))
	key := unique("nowhere")
	ctx, cancel := context.WithTimeout(context.Background(), waitMessage)
	defer cancel()
	must(ch.PublishWithContext(ctx, "", key, true, false, amqp.Publishing{MessageId: "m-1", Body: []byte("lost")}), "publish")
	select {
	case r := <-returns:
		check(r.ReplyCode == 312 && r.ReplyText == "NO_ROUTE", "basic.return %d %s, expected 312 NO_ROUTE", r.ReplyCode, r.ReplyText)
		check(string(r.Body) == "lost" && r.MessageId == "m-1" && r.RoutingKey == key && r.Exchange == "",
			"returned message differs: %+v", r)
	case <-time.After(waitMessage):
		fail("mandatory publish to an unroutable key was not returned")
	}
	confirm(confirms) // RabbitMQ acks a returned message after the return
	return ""
}

func cHeartbeat() string {
	conn, err := amqp.DialConfig(amqpURL(), amqp.Config{Heartbeat: heartbeat, Dial: amqp.DefaultDial(5 * time.Second)})
	must(err, "connect")
	defer conn.Close()
	check(conn.Config.Heartbeat == heartbeat, "negotiated heartbeat %v, asked for %v", conn.Config.Heartbeat, heartbeat)
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	ch, confirms := confirmedChannel(conn)
	q := tempQueue(ch)
	select {
	case e := <-closed:
		fail("connection closed during the %v pause: %v", pause, e)
	case <-time.After(pause):
	}
	publish(ch, "", q, amqp.Publishing{Body: []byte("alive")})
	confirm(confirms)
	check(string(getOne(ch, q, true).Body) == "alive", "wrong body after the pause")
	return fmt.Sprintf("%v pause with a %v heartbeat", pause, heartbeat)
}

func cChannelError() string {
	conn := connect()
	defer conn.Close()
	ch := channel(conn)
	_, err := ch.QueueDeclarePassive(unique("missing"), false, false, false, false, nil)
	var amqpErr *amqp.Error
	check(errors.As(err, &amqpErr), "passive declare of a missing queue: expected *amqp.Error, got %v", err)
	check(amqpErr.Code == 404 && strings.HasPrefix(amqpErr.Reason, "NOT_FOUND") && amqpErr.Recover,
		"expected a channel-level 404 NOT_FOUND, got %#v", amqpErr)
	check(ch.IsClosed(), "channel still open after the 404")
	check(!conn.IsClosed(), "connection closed with the channel")
	ch2, confirms := confirmedChannel(conn)
	q := tempQueue(ch2)
	publish(ch2, "", q, amqp.Publishing{Body: []byte("still works")})
	confirm(confirms)
	check(string(getOne(ch2, q, true).Body) == "still works", "new channel did not work")
	return ""
}

// ---------------------------------------------------------------------------
// Cross-language RPC (see interop/cross): same protocol in every language.

func fib(n int) int {
	a, b := 0, 1
	for i := 0; i < n; i++ {
		a, b = b, a+b
	}
	return a
}

func rpcServer(queue string, count int) {
	conn := connect()
	defer conn.Close()
	ch := channel(conn)
	_, err := ch.QueueDeclare(queue, false, true, false, false, nil)
	must(err, "declare")
	must(ch.Qos(1, 0, false), "qos")
	deliveries, err := ch.Consume(queue, "", false, false, false, false, nil)
	must(err, "consume")
	fmt.Println(`{"event": "ready"}`)
	for i := 0; i < count; i++ {
		d := <-deliveries
		var n int
		_, err := fmt.Sscan(string(d.Body), &n)
		must(err, "request body")
		fmt.Printf("{\"event\": \"request\", \"n\": %d, \"reply_to\": %q, \"correlation_id\": %q}\n", n, d.ReplyTo, d.CorrelationId)
		publish(ch, "", d.ReplyTo, amqp.Publishing{CorrelationId: d.CorrelationId, Body: []byte(fmt.Sprint(fib(n)))})
		must(d.Ack(false), "ack")
	}
}

func rpcClient(queue string, ns []int) {
	conn := connect()
	defer conn.Close()
	ch := channel(conn)
	replyQ := tempQueue(ch)
	replies, err := ch.Consume(replyQ, "", true, false, false, false, nil)
	must(err, "consume")
	fmt.Printf("{\"event\": \"ready\", \"callback_queue\": %q}\n", replyQ)
	ids := make([]string, len(ns))
	for i, n := range ns { // all outstanding at once
		ids[i] = unique("corr")
		publish(ch, "", queue, amqp.Publishing{ReplyTo: replyQ, CorrelationId: ids[i], Body: []byte(fmt.Sprint(n))})
	}
	results := map[string]string{}
	for len(results) < len(ns) {
		select {
		case d := <-replies:
			results[d.CorrelationId] = string(d.Body)
		case <-time.After(10 * time.Second):
			fail("only %d of %d replies", len(results), len(ns))
		}
	}
	for i, n := range ns {
		r, ok := results[ids[i]]
		check(ok, "no reply for correlation id %s", ids[i])
		fmt.Printf("{\"event\": \"result\", \"n\": %d, \"result\": %s, \"correlation_id\": %q}\n", n, r, ids[i])
	}
}

func main() {
	checks := map[string]func() string{
		"connect": cConnect, "wrong_password": cWrongPassword, "exchange_types": cExchangeTypes,
		"bodies": cBodies, "properties": cProperties, "confirms": cConfirms, "basic_get": cBasicGet,
		"nack_requeue": cNackRequeue, "reject": cReject, "prefetch": cPrefetch,
		"consumer_cancel": cConsumerCancel, "mandatory_return": cMandatoryReturn,
		"heartbeat": cHeartbeat, "channel_error": cChannelError,
		"tls_connect": cTLSConnect, "tls_external": cTLSExternal, "tls_untrusted_ca": cTLSUntrustedCA,
	}
	if len(os.Args) < 2 {
		fmt.Println("usage: interop-go CHECK | rpc-server QUEUE COUNT | rpc-client QUEUE N...")
		os.Exit(2)
	}
	name := os.Args[1]
	time.AfterFunc(deadline, func() {
		fmt.Printf("%s: still running after its %v deadline\n", name, deadline)
		os.Exit(3)
	})
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				fmt.Printf("%s: %s\n", name, string(f))
				os.Exit(1)
			}
			panic(r)
		}
	}()
	switch name {
	case "rpc-server":
		var count int
		fmt.Sscan(os.Args[3], &count)
		rpcServer(os.Args[2], count)
		return
	case "rpc-client":
		var ns []int
		for _, a := range os.Args[3:] {
			var n int
			fmt.Sscan(a, &n)
			ns = append(ns, n)
		}
		rpcClient(os.Args[2], ns)
		return
	}
	fn, ok := checks[name]
	if !ok {
		fmt.Printf("unknown check %q\n", name)
		os.Exit(2)
	}
	result := fn()
	if result != "" {
		fmt.Printf("%s: ok (%s)\n", name, result)
	} else {
		fmt.Printf("%s: ok\n", name)
	}
}

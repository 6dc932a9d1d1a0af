# The client checks with Bunny (Debian's ruby-bunny), plus the Ruby side of
# the cross-language RPC scenarios. See interop/README.md.
#
# Usage: ruby checks.rb CHECK
#        ruby checks.rb rpc-server QUEUE COUNT | rpc-client QUEUE N...
require "bunny"
require "bigdecimal"
require "json"
require "securerandom"
require "uri"

DEADLINE_S = 25
HEARTBEAT_S = 1
PAUSE_S = 5
ONE_MIB = 1 << 20

class Failed < StandardError; end

def check(cond, reason)
  raise Failed, reason unless cond
end

def amqp_url
  ENV["AMQP_URL"] or (puts "AMQP_URL is not set"; exit 2)
end

def url_parts
  u = URI.parse(amqp_url)
  { host: u.host, port: u.port || 5672, user: URI.decode_www_form_component(u.user || "guest"),
    pass: URI.decode_www_form_component(u.password || "guest") }
end

def unique(kind)
  "interop.#{kind}.#{SecureRandom.hex(6)}"
end

def connect(**opts)
  conn = Bunny.new(amqp_url, connection_timeout: 5, logger: Logger.new(nil), **opts)
  conn.start
  conn
end

def temp_queue(ch)
  ch.queue("", exclusive: true)
end

def get_one(q, manual_ack: false)
  250.times do
    info, props, body = q.pop(manual_ack: manual_ack)
    return [info, props, body] if info
    sleep 0.02
  end
  raise Failed, "no message arrived in #{q.name} within 5s"
end

def drain(q)
  got = []
  loop do
    info, _, body = q.pop
    return got unless info
    got << body
  end
end

def describe(body)
  "#{body.bytesize} bytes" + (body.empty? ? "" : " starting #{body.byteslice(0, 8).unpack1('H*')}")
end

# Every field type amq-protocol can encode: it writes every Integer as a
# signed 64-bit 'l' and has no encoding for byte arrays ('x'). Its decimal
# encoder is wrong for fractions (amq-protocol 2.3.2 writes BigDecimal
# "3.14" as scale 0, value 3), so the decimal sent here is a whole number.
def headers
  {
    "string" => "h\u00e9llo, w\u00f6rld", "empty-string" => "", "true" => true, "false" => false,
    "int" => 7, "int-negative" => -9223372036854775808, "float32" => AMQ::Protocol::Float32Bit.new(0.25),
    "float64" => 1.5, "decimal" => BigDecimal("42"), "timestamp" => Time.at(1700000000), "void" => nil,
    "array" => [1, "two", true, { "k" => "v" }, [3, 4]],
    "nested" => { "level1" => { "level2" => { "n" => 42, "s" => "deep" } }, "list" => ["a", 1] },
  }
end

# Equal values of the same class; strings compare as bytes (amq-protocol
# decodes them as binary strings).
def same?(got, want)
  case want
  when String then got.is_a?(String) && got.b == want.b
  when Hash then got.is_a?(Hash) && got.keys.sort == want.keys.sort && want.all? { |k, v| same?(got[k], v) }
  when Array then got.is_a?(Array) && got.size == want.size && want.zip(got).all? { |w, g| same?(g, w) }
  else got.class == want.class && got == want
  end
end

def decoded_headers
  h = headers
  h["float32"] = 0.25
  h
end

def properties
  {
    content_type: "application/x-interop", content_encoding: "x-identity", delivery_mode: 2, priority: 5,
    correlation_id: "corr-7f3a", reply_to: "interop.reply-to", expiration: "60000", message_id: "msg-0001",
    timestamp: 1700000000, type: "interop.event", user_id: url_parts[:user], app_id: "interop-suite",
  }
end

CHECKS = {}
def check_named(name, &block)
  CHECKS[name] = block
end

check_named "connect" do
  p = url_parts
  conn = Bunny.new(host: p[:host], port: p[:port], user: p[:user], password: p[:pass], vhost: "/",
                   connection_timeout: 5, logger: Logger.new(nil))
  conn.start
  ch = conn.create_channel
  check(ch.open?, "channel did not open")
  product = conn.server_properties["product"]
  ch.close
  conn.close
  check(conn.closed?, "connection did not close")
  "server product #{product}"
end

check_named "wrong_password" do
  p = url_parts
  conn = Bunny.new(host: p[:host], port: p[:port], user: p[:user], password: "#{p[:pass]}-wrong", vhost: "/",
                   connection_timeout: 5, logger: Logger.new(nil), automatically_recover: false)
  begin
    conn.start
  rescue Bunny::AuthenticationFailureError => e
    next "#{e.class}: #{e.message}"
  rescue StandardError => e
    raise Failed, "expected Bunny::AuthenticationFailureError (403), got #{e.class}: #{e.message}"
  end
  conn.close
  raise Failed, "connected with a wrong password"
end

check_named "exchange_types" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  x = {}
  %w[direct fanout topic headers].each { |kind| x[kind] = ch.exchange(unique(kind), type: kind.to_sym, auto_delete: true) }
  q = %w[direct fanout1 fanout2 topic h_all h_any].to_h { |k| [k, temp_queue(ch)] }
  q["direct"].bind(x["direct"], routing_key: "black")
  q["fanout1"].bind(x["fanout"])
  q["fanout2"].bind(x["fanout"])
  q["topic"].bind(x["topic"], routing_key: "*.orange.#")
  q["h_all"].bind(x["headers"], arguments: { "x-match" => "all", "format" => "pdf", "type" => "report" })
  q["h_any"].bind(x["headers"], arguments: { "x-match" => "any", "format" => "pdf", "type" => "report" })
  x["direct"].publish("direct-hit", routing_key: "black")
  x["direct"].publish("direct-miss", routing_key: "white")
  x["fanout"].publish("fanout", routing_key: "ignored")
  x["topic"].publish("topic-hit", routing_key: "quick.orange.rabbit.x")
  x["topic"].publish("topic-miss", routing_key: "quick.brown.fox")
  x["headers"].publish("headers-both", headers: { "format" => "pdf", "type" => "report" })
  x["headers"].publish("headers-one", headers: { "format" => "pdf", "type" => "log" })
  x["headers"].publish("headers-none", headers: { "format" => "zip" })
  check(ch.wait_for_confirms, "publishes nacked")
  want = { "direct" => ["direct-hit"], "fanout1" => ["fanout"], "fanout2" => ["fanout"], "topic" => ["topic-hit"],
           "h_all" => ["headers-both"], "h_any" => ["headers-both", "headers-one"] }
  want.each do |k, w|
    got = drain(q[k])
    check(got == w, "queue bound for #{k}: got #{got}, expected #{w}")
  end
  x.each_value(&:delete)
  conn.close
  nil
end

check_named "bodies" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  { "empty" => "".b, "one byte" => "\x00".b, "1 MiB" => Random.bytes(ONE_MIB) }.each do |label, body|
    ch.default_exchange.publish(body, routing_key: q.name)
    check(ch.wait_for_confirms, "publish nacked")
    _, _, got = get_one(q)
    check(got.b == body, "#{label} body: got #{describe(got)}, sent #{describe(body)}")
  end
  conn.close
  nil
end

check_named "properties" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  want = properties
  ch.default_exchange.publish("props", routing_key: q.name, headers: headers, **want)
  check(ch.wait_for_confirms, "publish nacked")
  _, props, = get_one(q)
  want[:timestamp] = Time.at(want[:timestamp]) # Bunny publishes an Integer, delivers a Time
  want.each do |k, v|
    got = props.send(k)
    check(same?(got, v), "#{k}: got #{got.inspect} (#{got.class}), sent #{v.inspect} (#{v.class})")
  end
  got = props.headers
  check(got.keys.sort == decoded_headers.keys.sort, "header keys: got #{got.keys.sort}, sent #{decoded_headers.keys.sort}")
  decoded_headers.each do |k, v|
    check(same?(got[k], v), "header #{k}: got #{got[k].inspect} (#{got[k].class}), sent #{v.inspect}")
  end
  conn.close
  nil
end

check_named "confirms" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  200.times { |i| ch.default_exchange.publish(i.to_s, routing_key: q.name) }
  check(ch.wait_for_confirms, "nacked: #{ch.nacked_set.to_a}")
  check(ch.unconfirmed_set.empty?, "unconfirmed: #{ch.unconfirmed_set.to_a}")
  count = q.message_count
  check(count == 200, "#{count} messages in the queue after 200 confirmed publishes")
  conn.close
  nil
end

check_named "basic_get" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  %w[first second].each { |b| ch.default_exchange.publish(b, routing_key: q.name) }
  check(ch.wait_for_confirms, "publishes nacked")
  # Bunny's GetResponse does not expose get-ok's message_count: count with a passive declare.
  info, _, body = q.pop(manual_ack: true)
  check(body == "first" && q.message_count == 1, "first get: #{body.inspect}, #{q.message_count} left")
  check(!info.redelivered?, "first delivery flagged redelivered")
  ch.ack(info.delivery_tag)
  info, _, body = q.pop
  check(body == "second" && q.message_count == 0, "second get: #{body.inspect}")
  info, _, body = q.pop
  check(info.nil?, "get on an empty queue returned #{body.inspect}")
  conn.close
  nil
end

check_named "nack_requeue" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  ch.default_exchange.publish("again", routing_key: q.name)
  check(ch.wait_for_confirms, "publish nacked")
  info, = get_one(q, manual_ack: true)
  check(!info.redelivered?, "first delivery flagged redelivered")
  ch.nack(info.delivery_tag, false, true)
  info, _, body = get_one(q, manual_ack: true)
  check(body == "again" && info.redelivered?, "after nack(requeue): #{body.inspect} redelivered=#{info.redelivered?}")
  ch.ack(info.delivery_tag)
  conn.close
  nil
end

check_named "reject" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  ch.default_exchange.publish("requeue-me", routing_key: q.name)
  check(ch.wait_for_confirms, "publish nacked")
  info, = get_one(q, manual_ack: true)
  ch.reject(info.delivery_tag, true)
  info, _, body = get_one(q, manual_ack: true)
  check(body == "requeue-me" && info.redelivered?, "after reject(requeue): #{body.inspect} redelivered=#{info.redelivered?}")
  ch.reject(info.delivery_tag, false)
  sleep 0.2
  count = q.message_count
  check(count.zero?, "reject(requeue=false) left #{count} message(s)")
  conn.close
  nil
end

check_named "prefetch" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  10.times { |i| ch.default_exchange.publish(i.to_s, routing_key: q.name) }
  check(ch.wait_for_confirms, "publishes nacked")
  ch.prefetch(3)
  got = Queue.new
  q.subscribe(manual_ack: true) { |info, _, _| got << info }
  sleep 0.5
  check(got.size == 3, "with prefetch(3), #{got.size} unacked deliveries (expected 3)")
  infos = Array.new(3) { got.pop }
  ch.ack(infos[0].delivery_tag)
  sleep 0.5
  check(got.size == 1, "after one ack, #{3 + got.size} deliveries (expected 4)")
  ch.ack(got.pop.delivery_tag, true)
  sleep 0.5
  check(got.size == 3, "after ack(multiple) of all, #{4 + got.size} deliveries (expected 7)")
  conn.close
  nil
end

check_named "consumer_cancel" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  got = Queue.new
  consumer = q.subscribe { |_, _, body| got << body }
  ch.default_exchange.publish("before", routing_key: q.name)
  check(ch.wait_for_confirms, "publish nacked")
  sleep 0.3
  check(got.size == 1 && got.pop == "before", "consumer did not get the message before cancel")
  consumer.cancel
  ch.default_exchange.publish("after", routing_key: q.name)
  check(ch.wait_for_confirms, "publish nacked")
  sleep 0.3
  check(got.empty?, "cancelled consumer still got a message")
  check(q.message_count == 1, "#{q.message_count} messages left after cancel (expected 1)")

  # The broker cancels a consumer whose queue is deleted.
  q2 = ch.queue(unique("cancel"))
  cancelled = Queue.new
  doomed = Bunny::Consumer.new(ch, q2, "doomed")
  doomed.on_delivery { |_, _, _| nil }
  doomed.on_cancellation { |basic_cancel| cancelled << basic_cancel.consumer_tag }
  q2.subscribe_with(doomed)
  other = conn.create_channel
  other.queue_delete(q2.name)
  tag = nil
  30.times do
    break if (tag = (cancelled.pop(true) rescue nil))
    sleep 0.1
  end
  check(tag == "doomed", "no broker basic.cancel for consumer 'doomed' after its queue was deleted")
  check(ch.open?, "channel closed after the broker's basic.cancel")
  conn.close
  nil
end

check_named "mandatory_return" do
  conn = connect
  ch = conn.create_channel
  ch.confirm_select
  returned = Queue.new
  x = ch.default_exchange
  x.on_return { |info, props, body| returned << [info, props, body] }
  key = unique("nowhere")
  x.publish("lost", routing_key: key, mandatory: true, message_id: "m-1")
  ch.wait_for_confirms
  info = props = body = nil
  50.times do
    break if (info, props, body = (returned.pop(true) rescue nil))
    sleep 0.1
  end
  check(info, "mandatory publish to an unroutable key was not returned")
  check(info.reply_code == 312 && info.reply_text == "NO_ROUTE", "basic.return #{info.reply_code} #{info.reply_text}, expected 312 NO_ROUTE")
  check(body == "lost" && props.message_id == "m-1" && info.routing_key == key, "returned message differs")
  conn.close
  nil
end

check_named "heartbeat" do
  conn = connect(heartbeat: HEARTBEAT_S)
  check(conn.heartbeat == HEARTBEAT_S, "negotiated heartbeat #{conn.heartbeat}, asked for #{HEARTBEAT_S}")
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  sleep PAUSE_S # Bunny's heartbeat sender thread keeps the connection alive
  check(conn.open?, "connection closed during the pause")
  ch.default_exchange.publish("alive", routing_key: q.name)
  check(ch.wait_for_confirms, "publish nacked")
  _, _, body = get_one(q)
  check(body == "alive", "wrong body after the pause")
  conn.close
  "#{PAUSE_S}s pause with a #{HEARTBEAT_S}s heartbeat"
end

check_named "channel_error" do
  conn = connect
  ch = conn.create_channel
  begin
    ch.queue(unique("missing"), passive: true)
    raise Failed, "passive declare of a missing queue succeeded"
  rescue Bunny::NotFound => e
    check(e.channel_close.reply_code == 404, "reply code #{e.channel_close.reply_code}")
  end
  check(ch.closed?, "channel still open after the 404")
  check(conn.open?, "connection closed with the channel")
  ch2 = conn.create_channel
  q = temp_queue(ch2)
  ch2.default_exchange.publish("still works", routing_key: q.name)
  _, _, body = get_one(q)
  check(body == "still works", "new channel did not work")
  conn.close
  nil
end

# TLS (see interop/README.md). SKIP_EXIT: runner.py counts it as skipped.
SKIP_EXIT = 77
class Skipped < StandardError; end

def tls_env
  raise Skipped, "skipped: no AMQPS_URL" if ENV["AMQPS_URL"].to_s.empty?
  names = { url: "AMQPS_URL", ca: "TLS_CA_FILE", other_ca: "TLS_OTHER_CA_FILE", cert: "TLS_CLIENT_CERT",
            key: "TLS_CLIENT_KEY", external_user: "TLS_EXTERNAL_USER" }
  missing = names.values.select { |v| ENV[v].to_s.empty? }
  check(missing.empty?, "AMQPS_URL is set but not #{missing.join(', ')}")
  names.transform_values { |v| ENV[v] }
end

def tls_connect(ca, external: false)
  env = tls_env
  u = URI.parse(env[:url])
  opts = { host: u.host, port: u.port || 5671, vhost: "/", tls: true, tls_ca_certificates: [ca], verify_peer: true,
           connection_timeout: 5, logger: Logger.new(nil), automatically_recover: false }
  if external
    opts.update(tls_cert: env[:cert], tls_key: env[:key], auth_mechanism: "EXTERNAL")
  else
    opts.update(user: URI.decode_www_form_component(u.user), pass: URI.decode_www_form_component(u.password))
  end
  conn = Bunny.new(opts)
  conn.start
  conn
end

# Queue#pop with a timeout (Ruby 3.1's Queue#pop has none); nil if nothing came.
def pop_within(queue, seconds)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  loop do
    return queue.pop(true)
  rescue ThreadError
    return nil if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    sleep 0.01
  end
end

# Publish (confirmed) to a temporary queue, consume it back; returns the TLS version.
def tls_round_trip(conn, user_id = nil)
  ch = conn.create_channel
  ch.confirm_select
  q = temp_queue(ch)
  sent = ["over tls", SecureRandom.random_bytes(ONE_MIB)]
  sent.each { |body| ch.default_exchange.publish(body, routing_key: q.name, user_id: user_id) }
  check(ch.wait_for_confirms, "publishes nacked")
  got = Queue.new
  q.subscribe(manual_ack: true) do |info, props, body|
    ch.ack(info.delivery_tag)
    got << [props.user_id, body]
  end
  sent.each_with_index do |want, i|
    uid, body = pop_within(got, 5) || raise(Failed, "message #{i} not consumed within 5s")
    check(body == want, "consumed #{describe(body)}, sent #{describe(want)}")
    check(uid == user_id, "user_id came back as #{uid.inspect}, sent #{user_id.inspect}")
  end
  ch.close
  version = conn.transport.socket.ssl_version
  check(%w[TLSv1.2 TLSv1.3].include?(version), "negotiated #{version}")
  version
end

check_named "tls_connect" do
  conn = tls_connect(tls_env[:ca])
  version = tls_round_trip(conn)
  conn.close
  "#{version}, PLAIN login, publish + consume"
end

check_named "tls_external" do
  env = tls_env
  conn = tls_connect(env[:ca], external: true)
  # user_id must equal the connection's user: this holds only if EXTERNAL
  # logged us in as the certificate's subject.
  version = tls_round_trip(conn, env[:external_user])
  conn.close
  "#{version}, EXTERNAL as #{env[:external_user].inspect}"
end

check_named "tls_untrusted_ca" do
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
  begin
    conn = tls_connect(tls_env[:other_ca])
  rescue Skipped, Failed
    raise
  rescue StandardError => e
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    causes = []
    err = e
    while err && causes.size < 10
      causes << "#{err.class}: #{err.message}"
      err = err.cause
    end
    check(causes.any? { |c| c.include?("certificate verify failed") },
          "expected a certificate verification error, got #{causes.join(' <- ')}")
    check(took < 10, format("the refusal took %.1fs", took))
    next format("refused in %.2fs: %s", took, causes.last)
  end
  conn.close
  raise Failed, "connected although the client trusts another CA"
end

# Cross-language RPC (see interop/cross).
def fib(n)
  a, b = 0, 1
  n.times { a, b = b, a + b }
  a
end

def rpc_server(queue, count)
  conn = connect
  ch = conn.create_channel
  q = ch.queue(queue, auto_delete: true)
  ch.prefetch(1)
  served = Queue.new
  q.subscribe(manual_ack: true) do |info, props, body|
    n = body.to_i
    puts JSON.generate(event: "request", n: n, reply_to: props.reply_to, correlation_id: props.correlation_id)
    $stdout.flush
    ch.default_exchange.publish(fib(n).to_s, routing_key: props.reply_to, correlation_id: props.correlation_id)
    ch.ack(info.delivery_tag)
    served << 1
  end
  puts JSON.generate(event: "ready")
  $stdout.flush
  count.times { served.pop }
  conn.close
end

def rpc_client(queue, ns)
  conn = connect
  ch = conn.create_channel
  reply = ch.queue("", exclusive: true)
  results = Queue.new
  reply.subscribe { |_, props, body| results << [props.correlation_id, body] }
  puts JSON.generate(event: "ready", callback_queue: reply.name)
  $stdout.flush
  ids = ns.map do |n|
    id = unique("corr")
    ch.default_exchange.publish(n.to_s, routing_key: queue, reply_to: reply.name, correlation_id: id)
    id
  end
  got = {}
  got.store(*results.pop) while got.size < ns.size
  ns.zip(ids).each { |n, id| puts JSON.generate(event: "result", n: n, result: got.fetch(id).to_i, correlation_id: id) }
  conn.close
end

name = ARGV[0]
Thread.new do
  sleep DEADLINE_S
  puts "#{name}: still running after its #{DEADLINE_S}s deadline"
  $stdout.flush
  exit!(3)
end
begin
  case name
  when "rpc-server" then rpc_server(ARGV[1], ARGV[2].to_i)
  when "rpc-client" then rpc_client(ARGV[1], ARGV[2..].map(&:to_i))
  else
    block = CHECKS[name] or (puts "usage: checks.rb {#{CHECKS.keys.join(',')}}"; exit 2)
    result = block.call
    puts "#{name}: ok#{result ? " (#{result})" : ''}"
  end
rescue Skipped => e
  puts "#{name}: #{e.message}"
  $stdout.flush
  exit!(SKIP_EXIT)
rescue Failed => e
  puts "#{name}: #{e.message}"
  $stdout.flush
  exit!(1)
rescue StandardError => e
  puts e.backtrace.first(5)
  puts "#{name}: #{e.class}: #{e.message.lines.first&.strip}"
  $stdout.flush
  exit!(1)
end
$stdout.flush
exit!(0)

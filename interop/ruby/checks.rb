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
require "fileutils"
require "stringio"

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

# --- Fault injection: a Warren of each check's own with
# --allow-fault-injection (restarts and alarms hit the whole broker, and the
# suite's broker is shared), from $WARREN_BIN, in memory, on free loopback
# ports; killed with the check (setpriv --pdeathsig, and in ensure). A
# restart is simulated in-process, so durable queues and persistent
# messages survive it in memory too. Skipped without WARREN_BIN (e.g.
# against a real RabbitMQ: fault injection is Warren's own).
require "net/http"
require "socket"
require "tmpdir"

class FaultBroker
  attr_reader :url, :mgmt

  def initialize
    bin = ENV["WARREN_BIN"].to_s
    raise Skipped, "skipped: no WARREN_BIN (fault injection needs a Warren of its own)" if bin.empty?
    @dir = Dir.mktmpdir("warren-fault.")
    mgmt_port = TCPServer.open("127.0.0.1", 0) { |s| s.addr[1] }
    port_file = File.join(@dir, "port")
    log = File.join(@dir, "broker.log")
    args = [bin, "--in-memory", "--allow-fault-injection", "--port", "0", "--port-file", port_file,
            "--bind", "127.0.0.1", "--management-port", mgmt_port.to_s, "--prometheus-port", "0"]
    args = ["setpriv", "--pdeathsig", "TERM", *args] if system("setpriv --version >/dev/null 2>&1")
    @pid = Process.spawn(*args, in: File::NULL, out: log, err: [:child, :out])
    @mgmt = URI("http://127.0.0.1:#{mgmt_port}")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 10
    port = ""
    until port.match?(/\A\d+\z/) || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      break if Process.waitpid(@pid, Process::WNOHANG)
      port = File.read(port_file).strip if File.exist?(port_file)
      sleep 0.05
    end
    unless port.match?(/\A\d+\z/)
      tail = File.read(log)[-500..] || File.read(log)
      stop
      raise Failed, "the fault broker did not start: #{tail.inspect}"
    end
    @url = "amqp://guest:guest@127.0.0.1:#{port}/%2f"
    # The management listener may come up a moment after the AMQP one.
    until (http(Net::HTTP::Get.new("/api/warren/faults")).code == "200" rescue false)
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        stop
        raise Failed, "the fault broker's management API at #{@mgmt} did not answer"
      end
      sleep 0.05
    end
  end

  def http(request)
    request.basic_auth("guest", "guest")
    Net::HTTP.start(@mgmt.host, @mgmt.port, open_timeout: 5, read_timeout: 10) { |h| h.request(request) }
  end

  # POST /api/warren/faults/<path>; checks the status, returns the JSON body.
  def fault(path, body = {}, expect: 204)
    request = Net::HTTP::Post.new("/api/warren/faults/#{path}", "Content-Type" => "application/json")
    request.body = JSON.generate(body)
    response = http(request)
    check(response.code.to_i == expect, "POST /api/warren/faults/#{path} answered #{response.code}, expected #{expect}")
    response.body.to_s.empty? ? nil : JSON.parse(response.body)
  end

  # The management API's view of a queue in /, or nil.
  def queue(name)
    response = http(Net::HTTP::Get.new("/api/queues/%2F/#{URI.encode_www_form_component(name)}"))
    response.code == "200" ? JSON.parse(response.body) : nil
  end

  def stop
    if @pid
      begin
        Process.kill("TERM", @pid)
        Process.wait(@pid)
      rescue Errno::ESRCH, Errno::ECHILD
        nil
      end
      @pid = nil
    end
    FileUtils.rm_rf(@dir)
  end
end

def with_fault_broker
  broker = FaultBroker.new
  yield broker
ensure
  broker&.stop
end

# A Bunny session with automatic recovery (its default), a connection_name
# faults can name it by, and a short network_recovery_interval (default 5s).
def recovering_connection(broker, name, **opts)
  conn = Bunny.new(broker.url, connection_timeout: 5, connection_name: name, network_recovery_interval: 0.2,
                   **{ logger: Logger.new(nil) }.merge(opts))
  conn.start
  conn
end

# Polls until the block holds; fails with `what` after `seconds`.
def until_true(what, seconds = 5)
  deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
  until yield
    raise Failed, "#{what} within #{seconds}s" if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    sleep 0.02
  end
end

# A server-initiated close (320, CONNECTION_FORCED) or a dropped socket:
# Bunny recovers, and the consumer it recovers keeps receiving.
def recovers_from(name)
  with_fault_broker do |broker|
    recoveries = Queue.new
    log = StringIO.new
    conn = recovering_connection(broker, "ruby-#{name}", recovery_completed: -> { recoveries << :done },
                                 logger: Logger.new(log, level: Logger::WARN))
    ch = conn.create_channel
    q = ch.queue(unique(name))
    got = Queue.new
    q.subscribe { |_, _, body| got << body }
    ch.default_exchange.publish("before", routing_key: q.name)
    check(pop_within(got, 5) == "before", "no delivery before the #{name}")
    yield broker
    check(pop_within(recoveries, 10), "Bunny did not recover within 10s")
    check(conn.open? && ch.open?, "not open after recovery: connection #{conn.status}, channel #{ch.status}")
    ch.default_exchange.publish("after", routing_key: q.name)
    check(pop_within(got, 5) == "after", "the recovered consumer got nothing")
    conn.close
    # What Bunny logged of it (a warning): the close's text, or the failure.
    logged = log.string.lines.grep(/Recovering from connection.close|Will recover from a network failure/)
    check(!logged.empty?, "Bunny logged no recovery: #{log.string.lines.last(3).join.inspect}")
    logged.first.strip.sub(/\A.*?(Recovering|Will)/, '\\1')
  end
end

check_named "fault_close" do
  logged = recovers_from("close") do |broker|
    broker.fault("connections/ruby-close/close", { code: 320, reason: "ruby test" })
  end
  check(logged.include?("Recovering from connection.close (CONNECTION_FORCED - ruby test)"),
        "Bunny logged #{logged.inspect}, expected it to recover from connection.close 320")
  "#{logged}; recovered, the consumer keeps receiving"
end

check_named "fault_drop" do
  logged = recovers_from("drop") { |broker| broker.fault("connections/ruby-drop/drop") }
  check(!logged.include?("connection.close"), "a dropped socket sends no close frame, yet Bunny logged #{logged.inspect}")
  "#{logged}; recovered, the consumer keeps receiving"
end

# A restart: Bunny retries through the down time, then recovers its
# topology (a durable queue, its consumer); the persistent message is kept.
check_named "fault_restart" do
  down_ms = 600
  with_fault_broker do |broker|
    recoveries = Queue.new
    conn = recovering_connection(broker, "ruby-restart", recovery_completed: -> { recoveries << :done })
    ch = conn.create_channel
    ch.confirm_select
    kept = ch.queue(unique("kept"), durable: true)
    work = ch.queue(unique("work"), durable: true)
    got = Queue.new
    work.subscribe { |_, _, body| got << body }
    ch.default_exchange.publish("persistent", routing_key: kept.name, persistent: true)
    ch.default_exchange.publish("transient", routing_key: kept.name, persistent: false)
    check(ch.wait_for_confirms, "publishes nacked")

    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    report = broker.fault("restart", { down_ms: down_ms }, expect: 200)
    check(report == { "connections" => 1, "queues" => 0, "exchanges" => 0, "messages" => 1 },
          "restart took away #{report}")
    check(pop_within(recoveries, 10), "Bunny did not recover within 10s of the restart")
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - started
    check(took >= down_ms / 1000.0, format("recovered after %.2fs, while the node was down %d ms", took, down_ms))
    check(broker.queue(work.name)&.fetch("consumers") == 1, "the consumer was not recovered")
    ch.default_exchange.publish("after", routing_key: work.name)
    check(pop_within(got, 5) == "after", "the recovered consumer got nothing")
    info, _, body = get_one(kept)
    check(info && body == "persistent", "the durable queue held #{body.inspect}")
    check(kept.message_count.zero?, "a transient message survived the restart")
    conn.close
    format("recovered %.2fs after a %d ms restart; queue, consumer and persistent message back", took, down_ms)
  end
end

# Basic.cancel from the broker: the consumer's on_cancellation callback.
check_named "fault_cancel_consumers" do
  with_fault_broker do |broker|
    conn = recovering_connection(broker, "ruby-cancel")
    ch = conn.create_channel
    q = ch.queue(unique("cancel"))
    cancelled = Queue.new
    consumer = q.subscribe(on_cancellation: ->(basic_cancel) { cancelled << basic_cancel.consumer_tag }) { |*| nil }
    broker.fault("queues/%2F/#{URI.encode_www_form_component(q.name)}/cancel-consumers",
                 { consumer_tag: consumer.consumer_tag })
    tag = pop_within(cancelled, 5)
    check(tag == consumer.consumer_tag, "on_cancellation got #{tag.inspect}, expected #{consumer.consumer_tag}")
    check(ch.open? && conn.open?, "the channel or connection closed")
    until_true("the broker still lists the consumer") { broker.queue(q.name)&.fetch("consumers")&.zero? }
    conn.close
    "on_cancellation for #{tag}"
  end
end

# connection.blocked / unblocked: Bunny's on_blocked / on_unblocked
# callbacks get the reason, blocked? follows, and a confirmed publish made
# while blocked is held until the unblock. `fault` is the injection path:
# a connection's block, or an alarm for every publisher.
def blocked_then_unblocked(broker, name, block, unblock, reason)
  conn = recovering_connection(broker, name)
  events = Queue.new
  conn.on_blocked { |method| events << [:blocked, method.reason] }
  conn.on_unblocked { events << [:unblocked, nil] }
  ch = conn.create_channel
  ch.confirm_select
  q = ch.queue(unique(name))
  ch.default_exchange.publish("warm-up", routing_key: q.name)
  check(ch.wait_for_confirms, "the warm-up publish was nacked")
  block.call
  # The broker sends connection.blocked once the connection publishes.
  ch.default_exchange.publish("held", routing_key: q.name)
  event = pop_within(events, 5)
  check(event == [:blocked, reason], "on_blocked got #{event.inspect}, expected the reason #{reason.inspect}")
  check(conn.blocked?, "Bunny does not report blocked?")
  sleep 0.3 # the held publish must not be taken while blocked
  check(broker.queue(q.name)&.fetch("messages") == 1, "a publish got through while blocked")
  unblock.call
  check(pop_within(events, 5) == [:unblocked, nil], "no on_unblocked")
  check(ch.wait_for_confirms, "the held publish was nacked after the unblock")
  check(!conn.blocked?, "still blocked? after on_unblocked")
  until_true("the held publish in its queue") { broker.queue(q.name)&.fetch("messages") == 2 }
  conn.close
end

check_named "fault_block" do
  with_fault_broker do |broker|
    blocked_then_unblocked(broker, "ruby-block",
                           -> { broker.fault("connections/ruby-block/block", { reason: "ruby says wait" }) },
                           -> { broker.fault("connections/ruby-block/unblock") }, "ruby says wait")
    "on_blocked (ruby says wait), the publish held, on_unblocked, then confirmed"
  end
end

check_named "fault_memory_alarm" do
  with_fault_broker do |broker|
    blocked_then_unblocked(broker, "ruby-alarm", -> { broker.fault("alarms/memory/raise") },
                           -> { broker.fault("alarms/memory/clear") }, "low on memory")
    "on_blocked (low on memory) from the memory alarm, on_unblocked when it cleared"
  end
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

<?php
// The client checks with php-amqplib (Debian's php-amqplib), plus the PHP
// side of the cross-language RPC scenarios. See interop/README.md.
//
// Usage: php checks.php CHECK
//        php checks.php rpc-server QUEUE COUNT | rpc-client QUEUE N...
declare(strict_types=1);

require_once '/usr/share/php/PhpAmqpLib/autoload.php';

use PhpAmqpLib\Connection\AMQPConnectionConfig;
use PhpAmqpLib\Connection\AMQPConnectionFactory;
use PhpAmqpLib\Connection\AMQPSSLConnection;
use PhpAmqpLib\Connection\AMQPStreamConnection;
use PhpAmqpLib\Connection\Heartbeat\PCNTLHeartbeatSender;
use PhpAmqpLib\Exception\AMQPBasicCancelException;
use PhpAmqpLib\Exception\AMQPConnectionClosedException;
use PhpAmqpLib\Exception\AMQPProtocolChannelException;
use PhpAmqpLib\Exception\AMQPTimeoutException;
use PhpAmqpLib\Message\AMQPMessage;
use PhpAmqpLib\Wire\AMQPAbstractCollection;
use PhpAmqpLib\Wire\AMQPArray;
use PhpAmqpLib\Wire\AMQPDecimal;
use PhpAmqpLib\Wire\AMQPTable;

// 2 s, not 1: PCNTLHeartbeatSender wakes every ceil(heartbeat/2) whole seconds and sends
// only after a further whole second of silence, so at 1 s RabbitMQ times it out.
const HEARTBEAT_S = 2;
const PAUSE_S = 5;
const ONE_MIB = 1 << 20;

class Failed extends Exception {}

function check(bool $cond, string $reason): void
{
    if (!$cond) {
        throw new Failed($reason);
    }
}

function url_parts(): array
{
    $url = getenv('AMQP_URL');
    if (!$url) {
        echo "AMQP_URL is not set\n";
        exit(2);
    }
    $u = parse_url($url);
    $path = $u['path'] ?? '/';
    return [
        'host' => $u['host'], 'port' => $u['port'] ?? 5672,
        'user' => rawurldecode($u['user'] ?? 'guest'), 'pass' => rawurldecode($u['pass'] ?? 'guest'),
        'vhost' => strlen($path) > 1 ? rawurldecode(substr($path, 1)) : '/',
    ];
}

// php-amqplib's defaults, as its users call it (AMQPLAIN login), with a
// heartbeat when asked for (read_write_timeout must be at least twice it).
function connect(int $heartbeat = 0, ?string $password = null): AMQPStreamConnection
{
    $p = url_parts();
    return new AMQPStreamConnection($p['host'], $p['port'], $p['user'], $password ?? $p['pass'], $p['vhost'],
        false, 'AMQPLAIN', null, 'en_US', 5.0, 5.0, null, false, $heartbeat);
}

function unique(string $kind): string
{
    return "interop.$kind." . bin2hex(random_bytes(6));
}

function temp_queue($ch): string
{
    [$name] = $ch->queue_declare('', false, false, true, false);
    return $name;
}

function get_one($ch, string $q, bool $noAck = true): AMQPMessage
{
    for ($i = 0; $i < 250; $i++) {
        $msg = $ch->basic_get($q, $noAck);
        if ($msg !== null) {
            return $msg;
        }
        usleep(20000);
    }
    throw new Failed("no message arrived in $q within 5s");
}

function drain($ch, string $q): array
{
    $got = [];
    while (($msg = $ch->basic_get($q, true)) !== null) {
        $got[] = $msg->getBody();
    }
    return $got;
}

function message_count($ch, string $q): int
{
    [, $count] = $ch->queue_declare($q, true);
    return $count;
}

function describe(string $b): string
{
    return strlen($b) . ' bytes' . ($b === '' ? '' : ' starting ' . bin2hex(substr($b, 0, 8)));
}

// Process I/O (consumer callbacks, returns, acks) for $seconds.
function pump($ch, float $seconds, ?callable $until = null): void
{
    $end = microtime(true) + $seconds;
    while (($left = $end - microtime(true)) > 0 && !($until && $until())) {
        try {
            $ch->wait(null, false, min($left, 0.1));
        } catch (AMQPTimeoutException $e) {
        }
    }
}

// Every field type php-amqplib can encode, each with its type given explicitly
// (its writer has no floats: 'Unsupported type "18"' / "19"; it decodes them).
function headers(): AMQPTable
{
    $t = new AMQPTable();
    $t->set('string', "h\u{e9}llo, w\u{f6}rld", AMQPTable::T_STRING_LONG);
    $t->set('empty-string', '', AMQPTable::T_STRING_LONG);
    $t->set('true', true, AMQPTable::T_BOOL);
    $t->set('false', false, AMQPTable::T_BOOL);
    $t->set('int8', -128, AMQPTable::T_INT_SHORTSHORT);
    $t->set('uint8', 255, AMQPTable::T_INT_SHORTSHORT_U);
    $t->set('int16', -32768, AMQPTable::T_INT_SHORT);
    $t->set('uint16', 65535, AMQPTable::T_INT_SHORT_U);
    $t->set('int32', -2147483648, AMQPTable::T_INT_LONG);
    $t->set('uint32', 4294967295, AMQPTable::T_INT_LONG_U);
    $t->set('int64', PHP_INT_MIN, AMQPTable::T_INT_LONGLONG);
    $t->set('decimal', new AMQPDecimal(314, 2), AMQPTable::T_DECIMAL);
    $t->set('timestamp', 1700000000, AMQPTable::T_TIMESTAMP);
    $t->set('bytes', "\x00\x01\xfe\xff", AMQPTable::T_BYTES);
    $t->set('void', null, AMQPTable::T_VOID);
    $inner = new AMQPTable();
    $inner->set('k', 'v', AMQPTable::T_STRING_LONG);
    $sub = new AMQPArray();
    $sub->push(3, AMQPTable::T_INT_LONG);
    $sub->push(4, AMQPTable::T_INT_SHORTSHORT);
    $array = new AMQPArray();
    $array->push(1, AMQPTable::T_INT_LONG);
    $array->push('two', AMQPTable::T_STRING_LONG);
    $array->push(true, AMQPTable::T_BOOL);
    $array->push($inner);
    $array->push($sub);
    $t->set('array', $array);
    $level2 = new AMQPTable(['s' => 'deep']);
    $level2->set('n', 42, AMQPTable::T_INT_LONG);
    $list = new AMQPArray();
    $list->push('a', AMQPTable::T_STRING_LONG);
    $list->push(1, AMQPTable::T_INT_SHORT);
    $nested = new AMQPTable(['level1' => new AMQPTable(['level2' => $level2])]);
    $nested->set('list', $list);
    $t->set('nested', $nested);
    return $t;
}

// A collection as nested [wire type symbol, value] pairs, to compare types as well as values.
function typed(AMQPAbstractCollection $c): array
{
    $symbols = AMQPAbstractCollection::getSupportedDataTypes();
    $out = [];
    foreach ($c as $k => [$type, $val]) {
        if ($val instanceof AMQPAbstractCollection) {
            $val = typed($val);
        } elseif ($val instanceof AMQPDecimal) {
            $val = "{$val->getE()}:{$val->getN()}";
        } elseif ($type === AMQPAbstractCollection::T_TIMESTAMP) {
            $val = (int) $val; // read back as a numeric string
        } elseif ($type === AMQPAbstractCollection::T_BOOL) {
            $val = (bool) $val; // read back as 0/1
        }
        $out[$k] = [$symbols[$type] ?? "?$type", $val];
    }
    return $out;
}

function properties(): array
{
    return [
        'content_type' => 'application/x-interop', 'content_encoding' => 'x-identity', 'delivery_mode' => 2,
        'priority' => 5, 'correlation_id' => 'corr-7f3a', 'reply_to' => 'interop.reply-to', 'expiration' => '60000',
        'message_id' => 'msg-0001', 'timestamp' => 1700000000, 'type' => 'interop.event',
        'user_id' => url_parts()['user'], 'app_id' => 'interop-suite',
    ];
}

$checks = [];

$checks['connect'] = function () {
    $p = url_parts();
    $conn = new AMQPStreamConnection($p['host'], $p['port'], $p['user'], $p['pass'], '/');
    $ch = $conn->channel();
    check($ch->is_open(), 'channel did not open');
    $product = $conn->getServerProperties()['product'][1] ?? '?';
    $ch->close();
    $conn->close();
    check(!$conn->isConnected(), 'connection did not close');
    return "server product $product";
};

$checks['wrong_password'] = function () {
    try {
        $conn = connect(0, url_parts()['pass'] . '-wrong');
    } catch (AMQPConnectionClosedException $e) {
        check($e->getCode() === 403, "expected code 403 ACCESS_REFUSED, got {$e->getCode()}: {$e->getMessage()}");
        return get_class($e) . ": {$e->getMessage()}";
    } catch (Throwable $e) {
        throw new Failed('expected AMQPConnectionClosedException (403 ACCESS_REFUSED), got ' . get_class($e) . ": {$e->getMessage()}");
    }
    $conn->close();
    throw new Failed('connected with a wrong password');
};

$checks['exchange_types'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $ch->confirm_select();
    $names = [];
    foreach (['direct', 'fanout', 'topic', 'headers'] as $kind) {
        $names[$kind] = unique($kind);
        $ch->exchange_declare($names[$kind], $kind, false, false, true);
    }
    $q = [];
    foreach (['direct', 'fanout1', 'fanout2', 'topic', 'h_all', 'h_any'] as $k) {
        $q[$k] = temp_queue($ch);
    }
    $ch->queue_bind($q['direct'], $names['direct'], 'black');
    $ch->queue_bind($q['fanout1'], $names['fanout']);
    $ch->queue_bind($q['fanout2'], $names['fanout']);
    $ch->queue_bind($q['topic'], $names['topic'], '*.orange.#');
    $ch->queue_bind($q['h_all'], $names['headers'], '', false, new AMQPTable(['x-match' => 'all', 'format' => 'pdf', 'type' => 'report']));
    $ch->queue_bind($q['h_any'], $names['headers'], '', false, new AMQPTable(['x-match' => 'any', 'format' => 'pdf', 'type' => 'report']));
    $pubs = [
        ['direct', 'black', null, 'direct-hit'], ['direct', 'white', null, 'direct-miss'],
        ['fanout', 'ignored', null, 'fanout'],
        ['topic', 'quick.orange.rabbit.x', null, 'topic-hit'], ['topic', 'quick.brown.fox', null, 'topic-miss'],
        ['headers', '', ['format' => 'pdf', 'type' => 'report'], 'headers-both'],
        ['headers', '', ['format' => 'pdf', 'type' => 'log'], 'headers-one'],
        ['headers', '', ['format' => 'zip'], 'headers-none'],
    ];
    foreach ($pubs as [$kind, $key, $headers, $body]) {
        $props = $headers ? ['application_headers' => new AMQPTable($headers)] : [];
        $ch->basic_publish(new AMQPMessage($body, $props), $names[$kind], $key);
    }
    $ch->wait_for_pending_acks(5);
    $want = ['direct' => ['direct-hit'], 'fanout1' => ['fanout'], 'fanout2' => ['fanout'], 'topic' => ['topic-hit'],
        'h_all' => ['headers-both'], 'h_any' => ['headers-both', 'headers-one']];
    foreach ($want as $k => $w) {
        $got = drain($ch, $q[$k]);
        check($got === $w, "queue bound for $k: got " . json_encode($got) . ', expected ' . json_encode($w));
    }
    foreach ($names as $name) {
        $ch->exchange_delete($name);
    }
    $conn->close();
};

$checks['bodies'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $q = temp_queue($ch);
    foreach (['empty' => '', 'one byte' => "\x00", '1 MiB' => random_bytes(ONE_MIB)] as $label => $body) {
        $ch->basic_publish(new AMQPMessage($body), '', $q);
        $got = get_one($ch, $q)->getBody();
        check($got === $body, "$label body: got " . describe($got) . ', sent ' . describe($body));
    }
    $conn->close();
};

$checks['properties'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $ch->confirm_select();
    $q = temp_queue($ch);
    $want = properties();
    $ch->basic_publish(new AMQPMessage('props', $want + ['application_headers' => headers()]), '', $q);
    $ch->wait_for_pending_acks(5);
    $msg = get_one($ch, $q);
    $got = $msg->get_properties();
    foreach ($want as $k => $v) {
        check(($got[$k] ?? null) === $v, "$k: got " . var_export($got[$k] ?? null, true) . ', sent ' . var_export($v, true));
    }
    $gotHeaders = typed($got['application_headers']);
    $wantHeaders = typed(headers());
    ksort($gotHeaders);
    ksort($wantHeaders);
    check(array_keys($gotHeaders) === array_keys($wantHeaders), 'header keys: got ' . implode(',', array_keys($gotHeaders)));
    foreach ($wantHeaders as $k => $v) {
        check($gotHeaders[$k] === $v, "header $k: got " . json_encode($gotHeaders[$k]) . ', sent ' . json_encode($v));
    }
    $conn->close();
};

$checks['confirms'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $acked = [];
    $nacked = [];
    $ch->set_ack_handler(function (AMQPMessage $m) use (&$acked) { $acked[] = $m->getDeliveryTag(); });
    $ch->set_nack_handler(function (AMQPMessage $m) use (&$nacked) { $nacked[] = $m->getDeliveryTag(); });
    $ch->confirm_select();
    $q = temp_queue($ch);
    for ($i = 0; $i < 200; $i++) {
        $ch->basic_publish(new AMQPMessage((string) $i), '', $q);
    }
    $ch->wait_for_pending_acks(5);
    check(!$nacked, count($nacked) . ' publishes nacked');
    check(count(array_unique($acked)) === 200, count($acked) . ' of 200 publishes acked');
    $count = message_count($ch, $q);
    check($count === 200, "$count messages in the queue after 200 confirmed publishes");
    $conn->close();
};

$checks['basic_get'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $ch->confirm_select();
    $q = temp_queue($ch);
    $ch->basic_publish(new AMQPMessage('first'), '', $q);
    $ch->basic_publish(new AMQPMessage('second'), '', $q);
    $ch->wait_for_pending_acks(5);
    $m = $ch->basic_get($q);
    check($m && $m->getBody() === 'first' && $m->getMessageCount() === 1,
        'first get: ' . ($m ? "{$m->getBody()} count {$m->getMessageCount()}" : 'nothing'));
    check(!$m->isRedelivered(), 'first delivery flagged redelivered');
    $m->ack();
    $m = $ch->basic_get($q, true);
    check($m && $m->getBody() === 'second' && $m->getMessageCount() === 0, 'second get: ' . ($m ? $m->getBody() : 'nothing'));
    $m = $ch->basic_get($q, true);
    check($m === null, 'get on an empty queue returned ' . ($m ? $m->getBody() : ''));
    $conn->close();
};

$checks['nack_requeue'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $q = temp_queue($ch);
    $ch->basic_publish(new AMQPMessage('again'), '', $q);
    $m = get_one($ch, $q, false);
    check(!$m->isRedelivered(), 'first delivery flagged redelivered');
    $m->nack(true);
    $m = get_one($ch, $q, false);
    check($m->getBody() === 'again' && $m->isRedelivered(), "after nack(requeue): {$m->getBody()} redelivered=" . var_export($m->isRedelivered(), true));
    $m->ack();
    $conn->close();
};

$checks['reject'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $q = temp_queue($ch);
    $ch->basic_publish(new AMQPMessage('requeue-me'), '', $q);
    get_one($ch, $q, false)->reject(true);
    $m = get_one($ch, $q, false);
    check($m->getBody() === 'requeue-me' && $m->isRedelivered(), "after reject(requeue): {$m->getBody()}");
    $m->reject(false);
    usleep(200000);
    $count = message_count($ch, $q);
    check($count === 0, "reject(requeue=false) left $count message(s)");
    $conn->close();
};

$checks['prefetch'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $ch->confirm_select();
    $q = temp_queue($ch);
    for ($i = 0; $i < 10; $i++) {
        $ch->basic_publish(new AMQPMessage((string) $i), '', $q);
    }
    $ch->wait_for_pending_acks(5);
    $ch->basic_qos(0, 3, false);
    $got = [];
    $ch->basic_consume($q, '', false, false, false, false, function (AMQPMessage $m) use (&$got) { $got[] = $m; });
    pump($ch, 0.5);
    check(count($got) === 3, 'with prefetch_count=3, ' . count($got) . ' unacked deliveries (expected 3)');
    $got[0]->ack();
    pump($ch, 0.5);
    check(count($got) === 4, 'after one ack, ' . count($got) . ' deliveries (expected 4)');
    $got[3]->ack(true);
    pump($ch, 0.5);
    check(count($got) === 7, 'after ack(multiple) of all, ' . count($got) . ' deliveries (expected 7)');
    $conn->close();
};

$checks['consumer_cancel'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $ch->confirm_select();
    $q = temp_queue($ch);
    $got = [];
    $tag = $ch->basic_consume($q, '', false, true, false, false, function (AMQPMessage $m) use (&$got) { $got[] = $m->getBody(); });
    $ch->basic_publish(new AMQPMessage('before'), '', $q);
    pump($ch, 0.3);
    check($got === ['before'], 'consumer got ' . json_encode($got) . ' before cancel');
    $ch->basic_cancel($tag);
    $ch->basic_publish(new AMQPMessage('after'), '', $q);
    pump($ch, 0.3);
    check($got === ['before'], 'cancelled consumer still got ' . json_encode($got));
    check(message_count($ch, $q) === 1, message_count($ch, $q) . ' messages left after cancel (expected 1)');

    // The broker cancels a consumer whose queue is deleted: php-amqplib
    // throws AMQPBasicCancelException from wait().
    [$q2] = $ch->queue_declare(unique('cancel'), false, false, false, false);
    $ch->basic_consume($q2, 'doomed', false, true, false, false, function () {});
    $conn->channel()->queue_delete($q2);
    try {
        pump($ch, 3);
        throw new Failed('no broker basic.cancel after the queue was deleted');
    } catch (AMQPBasicCancelException $e) {
        check($e->getConsumerTag() === 'doomed', "basic.cancel for {$e->getConsumerTag()}, expected doomed");
    }
    check($ch->is_open(), "channel closed after the broker's basic.cancel");
    $conn->close();
};

$checks['mandatory_return'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    $returned = null;
    $ch->set_return_listener(function ($code, $text, $exchange, $key, AMQPMessage $m) use (&$returned) {
        $returned = [$code, $text, $exchange, $key, $m];
    });
    $ch->confirm_select();
    $key = unique('nowhere');
    $ch->basic_publish(new AMQPMessage('lost', ['message_id' => 'm-1']), '', $key, true);
    $ch->wait_for_pending_acks_returns(5);
    check($returned !== null, 'mandatory publish to an unroutable key was not returned');
    [$code, $text, $exchange, $rkey, $m] = $returned;
    check($code === 312 && $text === 'NO_ROUTE', "basic.return $code $text, expected 312 NO_ROUTE");
    check($m->getBody() === 'lost' && $m->get('message_id') === 'm-1' && $rkey === $key, 'returned message differs');
    $conn->close();
};

$checks['heartbeat'] = function () {
    $conn = connect(HEARTBEAT_S);
    check($conn->getHeartbeat() === HEARTBEAT_S, "negotiated heartbeat {$conn->getHeartbeat()}, asked for " . HEARTBEAT_S);
    // php-amqplib sends heartbeats from a SIGALRM handler while the script is busy elsewhere.
    $sender = new PCNTLHeartbeatSender($conn);
    $sender->register();
    $ch = $conn->channel();
    $q = temp_queue($ch);
    $end = microtime(true) + PAUSE_S;
    while (microtime(true) < $end) {
        usleep(100000); // signals cut sleeps short
    }
    $sender->unregister();
    check($conn->isConnected(), 'connection closed during the pause');
    $ch->basic_publish(new AMQPMessage('alive'), '', $q);
    check(get_one($ch, $q)->getBody() === 'alive', 'wrong body after the pause');
    $conn->close();
    return PAUSE_S . 's pause with a ' . HEARTBEAT_S . 's heartbeat';
};

$checks['channel_error'] = function () {
    $conn = connect();
    $ch = $conn->channel();
    try {
        $ch->queue_declare(unique('missing'), true);
        throw new Failed('passive declare of a missing queue succeeded');
    } catch (AMQPProtocolChannelException $e) {
        check($e->getCode() === 404 && str_starts_with($e->getMessage(), 'NOT_FOUND'), "expected 404 NOT_FOUND, got {$e->getCode()} {$e->getMessage()}");
    }
    check(!$ch->is_open(), 'channel still open after the 404');
    check($conn->isConnected(), 'connection closed with the channel');
    $ch2 = $conn->channel();
    $q = temp_queue($ch2);
    $ch2->basic_publish(new AMQPMessage('still works'), '', $q);
    check(get_one($ch2, $q)->getBody() === 'still works', 'new channel did not work');
    $conn->close();
};

// Cross-language RPC (see interop/cross).
// TLS (see interop/README.md). SKIP_EXIT: runner.py counts it as skipped.
const SKIP_EXIT = 77;
class Skipped extends Exception {}

function tls_env(): array
{
    if (!getenv('AMQPS_URL')) {
        throw new Skipped('skipped: no AMQPS_URL');
    }
    $names = ['url' => 'AMQPS_URL', 'ca' => 'TLS_CA_FILE', 'other_ca' => 'TLS_OTHER_CA_FILE',
        'cert' => 'TLS_CLIENT_CERT', 'key' => 'TLS_CLIENT_KEY', 'external_user' => 'TLS_EXTERNAL_USER'];
    $missing = array_filter($names, fn ($v) => !getenv($v));
    check(!$missing, 'AMQPS_URL is set but not ' . implode(', ', $missing));
    $env = array_map(fn ($v) => getenv($v), $names);
    $u = parse_url($env['url']);
    $env += ['host' => $u['host'], 'port' => $u['port'] ?? 5671,
        'user' => rawurldecode($u['user'] ?? 'guest'), 'pass' => rawurldecode($u['pass'] ?? 'guest')];
    return $env;
}

// AMQPSSLConnection with PHP's stream TLS options: the server is verified
// against $ca (and its name); with $external our certificate is sent and we
// log in with EXTERNAL (no user, no password).
function tls_connect(string $ca, bool $external = false): AMQPSSLConnection
{
    $env = tls_env();
    $ssl = ['cafile' => $ca, 'verify_peer' => true, 'verify_peer_name' => true];
    $options = ['connection_timeout' => 5.0, 'read_write_timeout' => 5.0];
    if ($external) {
        $ssl += ['local_cert' => $env['cert'], 'local_pk' => $env['key']];
        $options['login_method'] = 'EXTERNAL';
        return new AMQPSSLConnection($env['host'], $env['port'], '', '', '/', $ssl, $options);
    }
    return new AMQPSSLConnection($env['host'], $env['port'], $env['user'], $env['pass'], '/', $ssl, $options);
}

// Publish (confirmed) to a temporary queue and consume it back; returns the TLS version.
function tls_round_trip($conn, ?string $userId = null): string
{
    $ch = $conn->channel();
    $ch->confirm_select();
    $q = temp_queue($ch);
    $sent = ['over tls', random_bytes(ONE_MIB)];
    foreach ($sent as $body) {
        $ch->basic_publish(new AMQPMessage($body, $userId === null ? [] : ['user_id' => $userId]), '', $q);
    }
    $ch->wait_for_pending_acks_returns(5.0);
    $got = [];
    $ch->basic_consume($q, '', false, false, false, false, function (AMQPMessage $m) use (&$got) {
        $got[] = $m;
        $m->ack();
    });
    pump($ch, 5.0, function () use (&$got, $sent) {
        return count($got) === count($sent);
    });
    check(count($got) === count($sent), 'consumed ' . count($got) . ' of ' . count($sent) . ' messages');
    foreach ($sent as $i => $body) {
        check($got[$i]->getBody() === $body, 'consumed ' . describe($got[$i]->getBody()) . ', sent ' . describe($body));
        $uid = $got[$i]->has('user_id') ? $got[$i]->get('user_id') : null;
        check($uid === $userId, 'user_id came back as ' . var_export($uid, true));
    }
    $ch->close();
    $version = stream_get_meta_data($conn->getIO()->getSocket())['crypto']['protocol'] ?? '?';
    check(in_array($version, ['TLSv1.2', 'TLSv1.3'], true), "negotiated $version");
    return $version;
}

$checks['tls_connect'] = function () {
    $env = tls_env();
    $conn = tls_connect($env['ca']);
    $version = tls_round_trip($conn);
    $conn->close();
    // As php-amqplib's own SSLConnectionTest connects: AMQPConnectionFactory
    // with a secure AMQPConnectionConfig.
    $config = new AMQPConnectionConfig();
    $config->setHost($env['host']);
    $config->setPort($env['port']);
    $config->setUser($env['user']);
    $config->setPassword($env['pass']);
    $config->setIsSecure(true);
    $config->setNetworkProtocol('tls');
    $config->setSslCaCert($env['ca']);
    $config->setSslVerify(true);
    $config->setSslVerifyName(true);
    $config->setConnectionTimeout(5.0);
    $config->setReadTimeout(5.0);
    $config->setWriteTimeout(5.0);
    $conn = AMQPConnectionFactory::create($config);
    check($conn->isConnected(), 'AMQPConnectionFactory: not connected');
    tls_round_trip($conn);
    $conn->close();
    return "$version, PLAIN login, AMQPSSLConnection and AMQPConnectionFactory";
};

$checks['tls_external'] = function () {
    $env = tls_env();
    $conn = tls_connect($env['ca'], true);
    // user_id must equal the connection's user: this holds only if EXTERNAL
    // logged us in as the certificate's subject.
    $version = tls_round_trip($conn, $env['external_user']);
    $conn->close();
    return "$version, EXTERNAL as {$env['external_user']}";
};

$checks['tls_untrusted_ca'] = function () {
    $env = tls_env();
    $started = microtime(true);
    try {
        $conn = tls_connect($env['other_ca']);
    } catch (Skipped | Failed $e) {
        throw $e;
    } catch (Throwable $e) {
        $took = microtime(true) - $started;
        $messages = [];
        for ($x = $e; $x !== null && count($messages) < 10; $x = $x->getPrevious()) {
            $messages[] = get_class($x) . ': ' . $x->getMessage();
        }
        // PHP reports the handshake's OpenSSL error in a warning before the
        // last one, and php-amqplib keeps only the last ("Unable to connect
        // ... (Unknown error)"). So the same TLS handshake, with the same
        // stream context options, is repeated here to read PHP's warnings.
        $warnings = [];
        set_error_handler(function ($no, $str) use (&$warnings) {
            $warnings[] = $str;
            return true;
        });
        $context = stream_context_create(['ssl' => ['cafile' => $env['other_ca'], 'verify_peer' => true,
            'verify_peer_name' => true]]);
        $sock = stream_socket_client("tls://{$env['host']}:{$env['port']}", $errno, $errstr, 5.0,
            STREAM_CLIENT_CONNECT, $context);
        restore_error_handler();
        check($sock === false, 'a plain PHP TLS stream trusting the other CA connected');
        $messages[] = 'PHP stream: ' . implode(' / ', $warnings);
        $all = implode(' <- ', $messages);
        check(str_contains($all, 'certificate verify failed'), "expected a certificate verification error, got $all");
        check($took < 10, sprintf('the refusal took %.1fs', $took));
        check(get_class($e) === 'PhpAmqpLib\\Exception\\AMQPIOException', 'expected AMQPIOException, got ' . get_class($e));
        return sprintf('refused in %.2fs: %s', $took, $all);
    }
    $conn->close();
    throw new Failed('connected although the client trusts another CA');
};

function fib(int $n): int
{
    [$a, $b] = [0, 1];
    for ($i = 0; $i < $n; $i++) {
        [$a, $b] = [$b, $a + $b];
    }
    return $a;
}

$checks['rpc-server'] = function () use ($argv) {
    [, , $queue, $count] = $argv;
    $conn = connect();
    $ch = $conn->channel();
    $ch->queue_declare($queue, false, false, false, true);
    $ch->basic_qos(0, 1, false);
    $served = 0;
    $ch->basic_consume($queue, '', false, false, false, false, function (AMQPMessage $m) use ($ch, &$served) {
        $n = (int) $m->getBody();
        echo json_encode(['event' => 'request', 'n' => $n, 'reply_to' => $m->get('reply_to'), 'correlation_id' => $m->get('correlation_id')]), "\n";
        $ch->basic_publish(new AMQPMessage((string) fib($n), ['correlation_id' => $m->get('correlation_id')]), '', $m->get('reply_to'));
        $m->ack();
        $served++;
    });
    echo json_encode(['event' => 'ready']), "\n";
    while ($served < (int) $count) {
        $ch->wait(null, false, 20);
    }
    $conn->close();
};

$checks['rpc-client'] = function () use ($argv) {
    $queue = $argv[2];
    $ns = array_map('intval', array_slice($argv, 3));
    $conn = connect();
    $ch = $conn->channel();
    $reply = temp_queue($ch);
    $results = [];
    $ch->basic_consume($reply, '', false, true, false, false, function (AMQPMessage $m) use (&$results) {
        $results[$m->get('correlation_id')] = $m->getBody();
    });
    echo json_encode(['event' => 'ready', 'callback_queue' => $reply]), "\n";
    $ids = [];
    foreach ($ns as $n) {
        $ids[] = $id = unique('corr');
        $ch->basic_publish(new AMQPMessage((string) $n, ['reply_to' => $reply, 'correlation_id' => $id]), '', $queue);
    }
    while (count($results) < count($ns)) {
        $ch->wait(null, false, 20);
    }
    foreach ($ns as $i => $n) {
        echo json_encode(['event' => 'result', 'n' => $n, 'result' => (int) $results[$ids[$i]], 'correlation_id' => $ids[$i]]), "\n";
    }
    $conn->close();
};

$name = $argv[1] ?? '';
if (!isset($checks[$name])) {
    echo 'usage: checks.php {' . implode(',', array_keys($checks)) . "}\n";
    exit(2);
}
try {
    $result = $checks[$name]();
    echo "$name: ok" . ($result ? " ($result)" : '') . "\n";
} catch (Skipped $e) {
    echo "$name: {$e->getMessage()}\n";
    exit(SKIP_EXIT);
} catch (Failed $e) {
    echo "$name: {$e->getMessage()}\n";
    exit(1);
} catch (Throwable $e) {
    echo $e->getTraceAsString(), "\n";
    echo "$name: " . get_class($e) . ": {$e->getMessage()}\n";
    exit(1);
}

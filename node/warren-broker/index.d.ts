/// <reference types="node" />
import type { ChildProcess } from 'child_process';

export interface StartOptions {
  /** The warren binary to run (default: $WARREN_BIN, else the one shipped in this package). */
  bin?: string;
  /** The address to listen on (default 127.0.0.1). */
  host?: string;
  /** The broker's --log-level (default "info"). */
  logLevel?: string;
  /** More warren flags. */
  extraArgs?: string[];
  /** How long start() waits for the broker to be ready, in ms (default 20000). */
  startupTimeout?: number;
}

export interface ClockReading {
  mode: string;
  now_ms: number;
  elapsed_ms: number;
  [key: string]: unknown;
}

export interface FaultStatus {
  allowed: boolean;
  injected_alarms: { memory: boolean; disk: boolean };
}

export interface RestartReport {
  connections: number;
  queues: number;
  exchanges: number;
  messages: number;
  [key: string]: unknown;
}

export type Alarm = 'memory' | 'disk';

/** The broker could not be started, or an HTTP call to it failed. */
export class WarrenError extends Error {
  /** The HTTP status of a failed call; null for a start-up failure. */
  status: number | null;
  /** What the broker answered. */
  body: string;
  constructor(message: string, status?: number | null, body?: string);
}

/** Warren's fault injection: one method per /api/warren/faults endpoint. */
export class Faults {
  /** connection.close with this code (320 CONNECTION_FORCED by default). */
  closeConnection(name: string, code?: number, reason?: string): Promise<void>;
  /** The socket closed with no close frame. */
  dropConnection(name: string): Promise<void>;
  /** channel.close on one channel (406 by default); the connection stays. */
  closeChannel(name: string, channel: number, code?: number, reason?: string): Promise<void>;
  block(name: string, reason?: string): Promise<void>;
  unblock(name: string): Promise<void>;
  /** Every write to the connection held back `ms` (0 clears). */
  latency(name: string, ms: number): Promise<void>;
  pauseQueue(queue: string, vhost?: string): Promise<void>;
  resumeQueue(queue: string, vhost?: string): Promise<void>;
  /** The next `count` publishes to the queue nacked (confirm mode). */
  nackPublishes(queue: string, count: number, vhost?: string): Promise<void>;
  cancelConsumers(queue: string, consumerTag?: string, vhost?: string): Promise<void>;
  /** Every socket dropped, connections refused for downMs, transient state gone. */
  restart(downMs?: number): Promise<RestartReport>;
  raiseAlarm(alarm?: Alarm): Promise<void>;
  clearAlarm(alarm?: Alarm): Promise<void>;
  status(): Promise<FaultStatus>;
}

export class WarrenBroker {
  constructor(options?: StartOptions);
  /** The binary it runs. */
  readonly binary: string;
  readonly host: string;
  readonly user: string;
  readonly password: string;
  /** The AMQP port (null when stopped). */
  readonly port: number | null;
  /** The management API's port. */
  readonly managementPort: number | null;
  /** The broker's process (null when stopped). */
  readonly process: ChildProcess | null;
  readonly pid: number | null;
  readonly running: boolean;
  /** amqp://guest:guest@127.0.0.1:PORT/%2f */
  readonly url: string;
  /** http://127.0.0.1:PORT */
  readonly managementUrl: string;
  readonly faults: Faults;
  vhostUrl(vhost: string): string;
  start(): Promise<this>;
  /** SIGTERM, then SIGKILL after timeoutMs (10000). Idempotent. */
  stop(timeoutMs?: number): Promise<void>;
  /** Moves the virtual clock and resolves once what fell due has run. */
  advance(seconds: number): Promise<ClockReading>;
  clock(): Promise<ClockReading>;
  /** Any management API call as guest; the parsed JSON answer. */
  api<T = any>(path: string, method?: string, body?: unknown, timeoutMs?: number): Promise<T>;
  /** What the broker has logged so far. */
  log(): string;
  [Symbol.asyncDispose](): Promise<void>;
}

/** Starts a fresh broker and resolves once it accepts AMQP and answers its management API. */
export function start(options?: StartOptions): Promise<WarrenBroker>;
/** options.bin, else $WARREN_BIN, else the package's bin/warren. */
export function findBinary(explicit?: string): string;

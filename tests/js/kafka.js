// The Kafka side of the tests of the sinks (sinks.test.js) and of `forward` destinations of kind
// kafka (forward-sinks.test.js): librdkafka's mock cluster (tests/kafka-broker, built here by
// cargo when missing), read back by kafkajs, a client independent of the gateway's.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';

import { uid } from './helpers.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const WAIT = 20000;

/** Builds the test broker (a no-op once built) and starts it: `{ bootstrap, command(c), stop() }`. */
export async function startBroker(topics) {
  const targetDir = path.join(ROOT, 'target/kafka-broker');
  const build = spawnSync('cargo', ['build', '--locked', '--quiet', '--manifest-path', path.join(ROOT, 'tests/kafka-broker/Cargo.toml'), '--target-dir', targetDir], { stdio: 'inherit', timeout: 15 * 60 * 1000 });
  assert.equal(build.status, 0, 'the Kafka test broker (tests/kafka-broker) builds');
  const child = spawn(path.join(targetDir, 'debug/kafka-test-broker'), topics.flatMap((t) => ['--topic', t]), { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout });
  const waiting = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = (what) => new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the broker did not answer ${what} within 10 s`)), 10000);
    waiting.push((line) => { clearTimeout(timer); resolve(line); });
  });
  const first = await nextLine('its address');
  assert.match(first, /^bootstrap=127\.0\.0\.1:\d+$/);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    bootstrap: first.slice('bootstrap='.length),
    async command(c) {
      const answer = nextLine(c);
      child.stdin.write(`${c}\n`);
      assert.equal(await answer, `ok ${c}`);
    },
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Reads `topic` from its beginning with a consumer group of its own until `count` messages whose
 * payload's `data.tag` is `tag` have come (or `timeoutMs` passed, which fails): those messages,
 * `[{ key, value (parsed JSON), partition }]`.
 */
export async function readTopic(bootstrap, topic, tag, count, timeoutMs = WAIT) {
  const kafka = new Kafka({ brokers: [bootstrap], clientId: 'sinks-test-reader', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: `reader-${uid()}` });
  const messages = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    let done;
    const enough = new Promise((resolve) => { done = resolve; });
    await consumer.run({
      eachMessage: async ({ message, partition }) => {
        const value = JSON.parse(message.value.toString());
        if (value.data?.tag !== tag) return;
        messages.push({ key: message.key?.toString(), value, partition });
        if (messages.length >= count) done();
      },
    });
    let timer;
    const late = new Promise((resolve) => { timer = setTimeout(resolve, timeoutMs); });
    await Promise.race([enough, late]);
    clearTimeout(timer);
  } finally {
    await consumer.disconnect().catch(() => {});
  }
  assert.ok(messages.length >= count, `${count} messages on ${topic} within ${timeoutMs} ms; got ${messages.length}`);
  return messages;
}

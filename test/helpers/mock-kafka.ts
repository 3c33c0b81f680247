import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

const BINARY = new URL('../../.build/mock-cluster', import.meta.url).pathname;

export interface MockKafka {
  bootstrap: string;
  brokers: string[];
  createTopic(name: string, partitions: number): Promise<void>;
  brokerDown(id: number): Promise<void>;
  brokerUp(id: number): Promise<void>;
  /** Fails the next `count` requests of a Kafka API (e.g. 0 = Produce, 8 = OffsetCommit) with `code`. */
  failRequests(apiKey: number, count: number, code: number): Promise<void>;
  stop(): Promise<void>;
}

/** librdkafka's mock cluster (built by scripts/ensure-kafka-mock.sh): a real Kafka-protocol broker on localhost. */
export async function startMockKafka(brokers = 3): Promise<MockKafka> {
  const child: ChildProcessWithoutNullStreams = spawn(BINARY, [String(brokers)], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stderr.resume();
  const lines = createInterface({ input: child.stdout });
  const pending: ((line: string) => void)[] = [];
  let bootstrap = '';
  const ready = new Promise<void>((resolve, reject) => {
    child.once('error', reject);
    lines.on('line', (line) => {
      if (line.startsWith('BOOTSTRAP ')) { bootstrap = line.slice(10).trim(); resolve(); return; }
      pending.shift()?.(line);
    });
  });
  await ready;
  const command = (cmd: string) => new Promise<void>((resolve, reject) => {
    pending.push((line) => (line.startsWith('OK ') ? resolve() : reject(new Error(`mock cluster: ${line}`))));
    child.stdin.write(`${cmd}\n`);
  });
  return {
    bootstrap,
    brokers: bootstrap.split(','),
    createTopic: (name, partitions) => command(`topic ${name} ${partitions}`),
    brokerDown: (id) => command(`down ${id}`),
    brokerUp: (id) => command(`up ${id}`),
    failRequests: (apiKey, count, code) => command(`error ${apiKey} ${count} ${code}`),
    async stop() {
      if (child.exitCode !== null) return;
      child.stdin.end('quit\n');
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await once(child, 'exit');
      clearTimeout(t);
    },
  };
}

/** The three topics a daemon uses, with its default names: interactions (with `partitions`), dead letters, model versions. */
export async function createOeldTopics(kafka: MockKafka, partitions: number): Promise<void> {
  await kafka.createTopic('oel.interactions', partitions);
  await kafka.createTopic('oel.interactions.dlq', 1);
  await kafka.createTopic('oel.model-versions', 1);
}

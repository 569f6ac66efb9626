// `realtime-gateway check [DIR]`: exit 0 and `ok: ...` for valid specs, exit 1 and
// `<file>:<line>:<col>: <message>` for each problem of broken ones.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import * as h from './helpers.js';

const WORKFLOW_SPEC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../namespaces/workflow.yaml');

let dirs = [];
afterEach(() => {
  for (const d of dirs.splice(0)) d.remove();
});

/** A temporary folder holding `files` ({name: text}); removed after the test. */
function specDir(files) {
  const d = h.tempDir('rtgw-check-');
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) h.writeFile(d.dir, name, text);
  return d.dir;
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('the check subcommand', () => {
  it('checks the built-in specs when given no folder, and exits 0', () => {
    const { status, stdout } = h.runGateway(['check']);
    assert.equal(status, 0, stdout);
    assert.match(stdout, /^ok: 5 namespace spec\(s\) in the built-in specs: \/ws \(plain WebSocket\), \/, \/realtime, \/workflow, \/ws$/m);
  });

  it('accepts a folder holding the workflow spec, and exits 0', () => {
    const dir = specDir({ 'workflow.yaml': readFileSync(WORKFLOW_SPEC, 'utf8') });
    const { status, stdout } = h.runGateway(['check', dir]);
    assert.equal(status, 0, stdout);
    assert.match(stdout, new RegExp(`^ok: 1 namespace spec\\(s\\) in ${escape(dir)}: /workflow$`, 'm'));
  });

  const BROKEN = [
    ['a YAML syntax error', 'namespace: /x\nrooms:\n  a: { pattern: "a"\n', 3, /\d+/, /unclosed/],
    ['an unknown field', 'namespace: /x\nrooms:\n  a:\n    patern: x\n', 4, 5, /^unknown field `patern`, expected one of pattern/],
    [
      'an action joining an unknown room',
      'namespace: /x\nrooms:\n  a: { pattern: "a:{id?}" }\nevents:\n  e:\n    do:\n      - join: { room: b }\n',
      7,
      /\d+/,
      /^unknown room `b` \(known: a\)$/,
    ],
    [
      'a template with an unknown variable',
      'namespace: /x\nrooms:\n  a: { pattern: "a:{id?}" }\nevents:\n  e:\n    do:\n      - join: { room: a }\n      - reply: { event: r, data: "{paylod.x}" }\n',
      8,
      /\d+/,
      /unknown variable `paylod`/,
    ],
    ['a namespace without a leading slash', 'namespace: nope\n', 1, 12, /^namespace `nope` must start with `\/`/],
    [
      'a template reading a field `room` does not have, with the close one',
      'namespace: /x\nrooms:\n  a: { pattern: a }\non_connect:\n  - join: { room: a }\n  - emit: { event: joined, data: { snapshot: "{room.snapshott}" } }\n',
      6,
      46,
      /^data\.snapshot: unknown field `snapshott` of `room` \(did you mean `room\.snapshot`\?\)$/,
    ],
    [
      'a template reading a field `user` does not have, with the close one',
      'namespace: /x\non_connect:\n  - emit: { event: hello, data: { tenant: "{user.tenant}" } }\n',
      3,
      43,
      /^data\.tenant: unknown field `tenant` of `user` \(did you mean `user\.tenantId`\?\)$/,
    ],
    // At the offending value's own line, not at the action, route or mapping holding it.
    [
      'a template error deep inside data',
      'namespace: /x\nevents:\n  e:\n    do:\n      - reply:\n          event: r\n          data:\n            outer:\n              inner: "{paylod.x}"\n',
      9,
      22,
      /^data\.outer\.inner: in `\{paylod\.x\}`: unknown variable `paylod` .*\(did you mean `payload`\?\)$/,
    ],
    [
      'a block-style join of an unknown room',
      'namespace: /x\nrooms:\n  a: { pattern: a }\non_connect:\n  - join:\n      room: b\n',
      6,
      13,
      /^unknown room `b` \(known: a\)$/,
    ],
    [
      'a reserved name as a client event',
      'namespace: /x\nevents:\n  error:\n    do:\n      - reply: { data: 1 }\n',
      3,
      3,
      /^`error` is reserved and cannot be a client event$/,
    ],
    [
      'a bad pattern inside a flow sequence',
      'namespace: /x\nrooms: { a: { pattern: a } }\npublish:\n  routes: [ { types: [ok, "b*d"], to: [{ room: a }], emit: { event: x } } ]\n',
      4,
      27,
      /^types: `b\*d` is not a type pattern/,
    ],
  ];

  for (const [name, text, line, column, message] of BROKEN) {
    it(`reports ${name} as file:line:col: message, and exits 1`, () => {
      const dir = specDir({ 'broken.yaml': text });
      const { status, stdout, stderr } = h.runGateway(['check', dir]);
      assert.equal(status, 1, `exit status; output:\n${stdout}${stderr}`);
      const file = escape(path.join(dir, 'broken.yaml'));
      const col = typeof column === 'number' ? String(column) : column.source;
      const found = `${stdout}\n${stderr}`.split('\n').find((l) => new RegExp(`^${file}:${line}:${col}: `).test(l));
      assert.ok(found, `no "${path.join(dir, 'broken.yaml')}:${line}:<col>: ..." line in:\n${stdout}${stderr}`);
      assert.match(found.replace(new RegExp(`^${file}:\\d+:\\d+: `), ''), message);
      assert.doesNotMatch(stdout, /^ok:/m);
    });
  }

  it('reports every error of a file in one run, unknown fields included, and goes on after a typo', () => {
    const dir = specDir({
      'many.yaml': [
        'namespace: /x',
        'rooms:',
        '  a:',
        '    patern: "a:{id}"',
        '    acess: []',
        'events:',
        '  e:',
        '    do:',
        '      - jion: { room: a, params: { id: "{payload.id}" } }',
        '      - reply:',
        '          data: { s: "{room.snapshott}", t: "{user.tenant}" }',
        '      - join: { room: b }',
        '',
      ].join('\n'),
    });
    const { status, stdout, stderr } = h.runGateway(['check', dir]);
    assert.equal(status, 1, `exit status; output:\n${stdout}${stderr}`);
    const file = path.join(dir, 'many.yaml');
    const errors = `${stdout}\n${stderr}`.split('\n').filter((l) => l.startsWith(`${file}:`)).map((l) => l.slice(file.length + 1));
    const expected = [
      /^4:5: unknown field `patern`, expected one of pattern, .* \(did you mean `pattern`\?\)$/,
      /^5:5: unknown field `acess`, expected one of .* \(did you mean `access`\?\)$/,
      /^9:9: unknown field `jion`, expected one of join, .* \(did you mean `join`\?\)$/,
      /^11:22: data\.s: unknown field `snapshott` of `room` \(did you mean `room\.snapshot`\?\)$/,
      /^11:45: data\.t: unknown field `tenant` of `user` \(did you mean `user\.tenantId`\?\)$/,
      /^12:23: unknown room `b` \(known: a\)$/,
    ];
    assert.equal(errors.length, expected.length, errors.join('\n'));
    expected.forEach((re, i) => assert.match(errors[i], re));
    assert.match(stderr, /^6 error\(s\) in /m);
  });

  it('reports the problems of every file in the folder', () => {
    const dir = specDir({
      'a.yaml': 'namespace: /a\nrooms:\n  r:\n    patern: x\n',
      'b.yaml': 'namespace: /b\nrooms:\n  r: { pattern: "r" }\non_connect:\n  - join: { room: nope }\n',
      'notes.txt': 'not a spec',
    });
    const { status, stdout, stderr } = h.runGateway(['check', dir]);
    const output = `${stdout}\n${stderr}`;
    assert.equal(status, 1);
    assert.match(output, new RegExp(`^${escape(path.join(dir, 'a.yaml'))}:4:5: unknown field \`patern\``, 'm'));
    assert.match(output, new RegExp(`^${escape(path.join(dir, 'b.yaml'))}:5:\\d+: unknown room \`nope\``, 'm'));
    assert.match(output, /^2 error\(s\) in /m);
  });

  it('refuses two specs for the same namespace', () => {
    const dir = specDir({ 'one.yaml': 'namespace: /same\n', 'two.yaml': 'namespace: /same\n' });
    const { status, stdout, stderr } = h.runGateway(['check', dir]);
    assert.equal(status, 1);
    assert.match(`${stdout}${stderr}`, /namespace `\/same` is already defined in .*one\.yaml/);
  });

  it('refuses a folder without specs, and exits 1', () => {
    const dir = specDir({ 'README.md': '# nothing here' });
    const { status, stdout, stderr } = h.runGateway(['check', dir]);
    assert.equal(status, 1);
    assert.match(`${stdout}${stderr}`, /no namespace specs here/);
  });
});

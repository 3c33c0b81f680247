/**
 * The OPCD loss (src/trainer/opcd-loss.ts) and the off-policy forward-KL loss
 * (src/trainer/off-policy-loss.ts) against an independent float64 reference written here with
 * plain loops over numbers: values, masking, the no-renormalisation rule of the top-k set,
 * gradients (central finite differences, through p_s as well as log p_s), no gradient to the
 * teacher, and the same results on the wasm backend.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '../src/model/network/register-gradients.ts';
import { initBackend } from '../src/model/kernels/backend.ts';
import { forwardKlLoss } from '../src/trainer/off-policy-loss.ts';
import { opcdLoss, topKMask } from '../src/trainer/opcd-loss.ts';
import { distillationLoss } from '../src/trainer/distillation-loss.ts';

// ---- float64 reference, independent of the implementation ----

type Rows = number[][];

/** log softmax(row / T), float64, log-sum-exp with the max subtracted. */
function logSoftmaxRef(row: number[], T: number): number[] {
  const z = row.map((x) => x / T);
  let m = -Infinity;
  for (const x of z) if (x > m) m = x;
  let s = 0;
  for (const x of z) s += Math.exp(x - m);
  const lse = m + Math.log(s);
  return z.map((x) => x - lse);
}

/** Indices of the k largest entries (all of them when k >= length). */
function topKRef(row: number[], k: number): number[] {
  const idx = row.map((_, i) => i);
  idx.sort((a, b) => row[b]! - row[a]!);
  return idx.slice(0, Math.min(k, row.length));
}

/** Token mean over unmasked rows of sum_{v in top-k(student)} p_s (log p_s - log p_T). */
function opcdRef(student: Rows, teacher: Rows, T: number, k: number, mask?: number[]): number {
  let total = 0;
  let count = 0;
  for (let i = 0; i < student.length; i++) {
    if (mask && mask[i] === 0) continue;
    const ls = logSoftmaxRef(student[i]!, T);
    const lt = logSoftmaxRef(teacher[i]!, T);
    let d = 0;
    for (const v of topKRef(student[i]!, k)) d += Math.exp(ls[v]!) * (ls[v]! - lt[v]!);
    total += d;
    count += 1;
  }
  return count === 0 ? 0 : total / count;
}

/** Token mean over unmasked rows of sum_{v in top-k(teacher)} p_T (log p_T - log p_s): the reverse form with the roles swapped. */
function forwardKlRef(student: Rows, teacher: Rows, T: number, k: number, mask?: number[]): number {
  return opcdRef(teacher, student, T, k, mask);
}

/** Central finite differences of f with respect to every entry of x, float64. */
function finiteDiff(f: (x: Rows) => number, x: Rows, eps = 1e-5): Rows {
  return x.map((row, i) => row.map((_, j) => {
    const plus = x.map((r) => [...r]);
    const minus = x.map((r) => [...r]);
    plus[i]![j]! += eps;
    minus[i]![j]! -= eps;
    return (f(plus) - f(minus)) / (2 * eps);
  }));
}

/** Deterministic pseudo-random logits (LCG), spread enough that top-k sets have clear gaps. */
function randomLogits(n: number, v: number, seed: number, scale = 3): Rows {
  let s = seed >>> 0;
  const next = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
  return Array.from({ length: n }, () => Array.from({ length: v }, () => (next() * 2 - 1) * scale));
}

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (|diff| ${Math.abs(actual - expected)} > ${tol})`);
const closeRows = (actual: Rows, expected: Rows, tol: number, what: string) =>
  expected.forEach((row, i) => row.forEach((e, j) => close(actual[i]![j]!, e, tol, `${what}[${i}][${j}]`)));

const value = (t: tf.Tensor): number => { const x = t.dataSync()[0]!; t.dispose(); return x; };
const rows = (t: tf.Tensor): Rows => { const r = t.arraySync() as Rows; t.dispose(); return r; };

/** Loss value and gradients with respect to student and teacher logits, as plain arrays. */
function lossAndGrads(
  loss: typeof opcdLoss, student: Rows, teacher: Rows, options: Parameters<typeof opcdLoss>[2],
): { loss: number; dStudent: Rows; dTeacher: Rows } {
  const s = tf.tensor2d(student);
  const t = tf.tensor2d(teacher);
  try {
    const { value: l, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => loss(a as tf.Tensor2D, b as tf.Tensor2D, options))([s, t]);
    return { loss: value(l), dStudent: rows(grads[0]!), dTeacher: rows(grads[1]!) };
  } finally { s.dispose(); t.dispose(); }
}

const T = 0.7;

// V = 4, two positions, top-2 < V.
const HAND_STUDENT: Rows = [[2.0, 1.0, 0.5, -1.0], [0.1, 1.5, -0.3, 0.9]];
const HAND_TEACHER: Rows = [[1.0, 2.0, 0.0, 0.3], [0.5, 0.2, 1.2, -0.4]];

function suite(backend: 'cpu' | 'wasm') {
  it('matches a hand-computed example with topK < V and no renormalisation over the top-k set', () => {
    assert.equal(tf.getBackend(), backend);
    const got = value(opcdLoss(tf.tensor2d(HAND_STUDENT), tf.tensor2d(HAND_TEACHER), { temperature: T, topK: 2 }));
    // Written out: position 1's student top-2 is {0, 1}; position 2's is {1, 3}.
    const term = (ls: number[], lt: number[], v: number) => Math.exp(ls[v]!) * (ls[v]! - lt[v]!);
    const ls0 = logSoftmaxRef(HAND_STUDENT[0]!, T), lt0 = logSoftmaxRef(HAND_TEACHER[0]!, T);
    const ls1 = logSoftmaxRef(HAND_STUDENT[1]!, T), lt1 = logSoftmaxRef(HAND_TEACHER[1]!, T);
    const expected = ((term(ls0, lt0, 0) + term(ls0, lt0, 1)) + (term(ls1, lt1, 1) + term(ls1, lt1, 3))) / 2;
    close(expected, opcdRef(HAND_STUDENT, HAND_TEACHER, T, 2), 1e-12, 'reference self-check');
    close(got, expected, 1e-5, 'loss');
    // Renormalising p_s and p_T over S_t would give a clearly different number.
    const renorm = [0, 1].map((i) => {
      const set = i === 0 ? [0, 1] : [1, 3];
      const ls = [ls0, ls1][i]!, lt = [lt0, lt1][i]!;
      const zs = Math.log(set.reduce((a, v) => a + Math.exp(ls[v]!), 0));
      const zt = Math.log(set.reduce((a, v) => a + Math.exp(lt[v]!), 0));
      return set.reduce((a, v) => a + Math.exp(ls[v]! - zs) * ((ls[v]! - zs) - (lt[v]! - zt)), 0);
    }).reduce((a, b) => a + b) / 2;
    assert.ok(Math.abs(renorm - expected) > 1e-2, `renormalised ${renorm} vs ${expected}`);
    // The set is the student's top-k, not the teacher's.
    const teacherSet = [0, 1].map((i) => {
      const ls = logSoftmaxRef(HAND_STUDENT[i]!, T), lt = logSoftmaxRef(HAND_TEACHER[i]!, T);
      return topKRef(HAND_TEACHER[i]!, 2).reduce((a, v) => a + Math.exp(ls[v]!) * (ls[v]! - lt[v]!), 0);
    }).reduce((a, b) => a + b) / 2;
    assert.ok(Math.abs(teacherSet - expected) > 1e-2, `teacher-top-k ${teacherSet} vs ${expected}`);
  });

  it('topKMask marks exactly each row\'s k largest student logits', () => {
    assert.deepEqual(rows(topKMask(tf.tensor2d(HAND_STUDENT), 2)), [[1, 1, 0, 0], [0, 1, 0, 1]]);
    assert.deepEqual(rows(topKMask(tf.tensor2d(HAND_STUDENT), 4)), [[1, 1, 1, 1], [1, 1, 1, 1]]);
  });

  it('a masked position changes neither the loss nor the other positions\' gradients, and gets no gradient', () => {
    const student = randomLogits(3, 5, 7);
    const teacher = randomLogits(3, 5, 8);
    const mask = [1, 0, 1];
    const options = { temperature: T, topK: 3, mask };
    const masked = lossAndGrads(opcdLoss, student, teacher, options);
    const kept = lossAndGrads(opcdLoss, [student[0]!, student[2]!], [teacher[0]!, teacher[2]!], { temperature: T, topK: 3 });
    close(masked.loss, kept.loss, 1e-6, 'masked loss vs loss without the row');
    close(masked.loss, opcdRef(student, teacher, T, 3, mask), 1e-5, 'masked loss vs reference');
    closeRows([masked.dStudent[0]!, masked.dStudent[2]!], kept.dStudent, 1e-6, 'gradient of kept rows');
    assert.deepEqual(masked.dStudent[1], [0, 0, 0, 0, 0]);
    // Anything in the masked row: same loss.
    const garbage = student.map((r, i) => (i === 1 ? r.map((x) => 40 * x) : r));
    close(lossAndGrads(opcdLoss, garbage, teacher, options).loss, masked.loss, 0, 'loss with a changed masked row');
    // Every position masked: 0, with a zero gradient (still connected, so variableGrads works).
    const none = lossAndGrads(opcdLoss, student, teacher, { temperature: T, topK: 3, mask: [0, 0, 0] });
    assert.equal(none.loss, 0);
    assert.ok(none.dStudent.flat().every((g) => g === 0));
  });

  it('gradient w.r.t. student logits matches central finite differences (through p_s too); none reaches the teacher', () => {
    const student = randomLogits(3, 6, 11);
    const teacher = randomLogits(3, 6, 12);
    const mask = [1, 1, 0];
    const k = 3;
    const got = lossAndGrads(opcdLoss, student, teacher, { temperature: T, topK: k, mask });
    const fd = finiteDiff((s) => opcdRef(s, teacher, T, k, mask), student);
    closeRows(got.dStudent, fd, 2e-5, 'dLoss/dStudent vs float64 finite differences');
    // Finite differences of the implementation itself (float32: a larger step, a looser bound).
    const lossAt = (s: Rows) => value(opcdLoss(tf.tensor2d(s), tf.tensor2d(teacher), { temperature: T, topK: k, mask }));
    closeRows(got.dStudent, finiteDiff(lossAt, student, 1e-2), 2e-3, 'dLoss/dStudent vs float32 finite differences');
    // If p_s were treated as a constant (only log p_s differentiated) the gradient would differ:
    // for a row, d/dz_j of sum_S c_v (ls_v - lt_v) with c = p_s fixed is (1/T) (c_j [j in S] - p_s(j) sum_S c_v).
    const logPsOnly = student.map((row, i) => {
      if (mask[i] === 0) return row.map(() => 0);
      const ls = logSoftmaxRef(row, T);
      const set = new Set(topKRef(row, k));
      const mass = [...set].reduce((a, v) => a + Math.exp(ls[v]!), 0);
      return row.map((_, j) => ((set.has(j) ? Math.exp(ls[j]!) : 0) - Math.exp(ls[j]!) * mass) / T / 2);
    });
    const diff = Math.max(...logPsOnly.flat().map((g, i) => Math.abs(g - got.dStudent.flat()[i]!)));
    assert.ok(diff > 1e-2, `gradient through p_s is missing (max diff from the log-p_s-only gradient: ${diff})`);
    // The teacher is a constant.
    assert.ok(got.dTeacher.flat().every((g) => g === 0), `teacher gradient: ${JSON.stringify(got.dTeacher)}`);
  });

  it('topK >= V equals the full-vocabulary reverse KL(p_s || p_T)', () => {
    const student = randomLogits(4, 7, 21);
    const teacher = randomLogits(4, 7, 22);
    let kl = 0;
    for (let i = 0; i < 4; i++) {
      const ls = logSoftmaxRef(student[i]!, T), lt = logSoftmaxRef(teacher[i]!, T);
      for (let v = 0; v < 7; v++) kl += Math.exp(ls[v]!) * (ls[v]! - lt[v]!);
    }
    kl /= 4;
    for (const topK of [7, 8, 256]) {
      close(value(opcdLoss(tf.tensor2d(student), tf.tensor2d(teacher), { temperature: T, topK })), kl, 1e-5, `topK ${topK}`);
    }
    // and topK = V - 1 drops a term.
    assert.ok(Math.abs(value(opcdLoss(tf.tensor2d(student), tf.tensor2d(teacher), { temperature: T, topK: 6 })) - kl) > 1e-6);
  });

  it('is 0 when student == teacher and positive otherwise (full vocabulary); the top-k truncation can be negative', () => {
    const student = randomLogits(3, 6, 31);
    const teacher = randomLogits(3, 6, 32);
    for (const topK of [2, 6, 256]) {
      assert.equal(value(opcdLoss(tf.tensor2d(student), tf.tensor2d(student), { temperature: T, topK })), 0);
    }
    assert.ok(value(opcdLoss(tf.tensor2d(student), tf.tensor2d(teacher), { temperature: T, topK: 256 })) > 0.01);
    // A truncated reverse KL is not a divergence: here the student's top token is more likely
    // under the teacher, and with k = 1 that is the only term, so D < 0 (as the reference says).
    const s = [[2, 1, 0]], t = [[4, 0, 0]];
    const got = value(opcdLoss(tf.tensor2d(s), tf.tensor2d(t), { temperature: T, topK: 1 }));
    close(got, opcdRef(s, t, T, 1), 1e-5, 'negative truncated example');
    assert.ok(got < 0);
  });

  it('forwardKlLoss: value and gradient against the reference, teacher top-k, no teacher gradient', () => {
    const student = randomLogits(3, 6, 41);
    const teacher = randomLogits(3, 6, 42);
    const mask = [1, 0, 1];
    for (const k of [2, 6]) {
      const got = lossAndGrads(forwardKlLoss, student, teacher, { temperature: T, topK: k, mask });
      close(got.loss, forwardKlRef(student, teacher, T, k, mask), 1e-5, `forward KL, k ${k}`);
      closeRows(got.dStudent, finiteDiff((s) => forwardKlRef(s, teacher, T, k, mask), student), 2e-5, `forward KL gradient, k ${k}`);
      assert.ok(got.dTeacher.flat().every((g) => g === 0));
    }
    // The set is the teacher's top-k: differs from using the student's.
    const got = value(forwardKlLoss(tf.tensor2d(HAND_STUDENT), tf.tensor2d(HAND_TEACHER), { temperature: T, topK: 2 }));
    close(got, forwardKlRef(HAND_STUDENT, HAND_TEACHER, T, 2), 1e-5, 'forward KL hand example');
    assert.equal(value(forwardKlLoss(tf.tensor2d(student), tf.tensor2d(student), { temperature: T, topK: 6 })), 0);
  });

  it('rejects mismatched shapes, bad masks and bad options; an empty batch is 0', () => {
    const a = tf.tensor2d(HAND_STUDENT);
    const b = tf.tensor2d([[1, 2, 3], [4, 5, 6]]);
    try {
      assert.throws(() => opcdLoss(a, b, { temperature: T, topK: 2 }), /same shape/);
      assert.throws(() => opcdLoss(a, a, { temperature: T, topK: 2, mask: [1] }), /mask has 1 entries for 2 positions/);
      assert.throws(() => opcdLoss(a, a, { temperature: 0, topK: 2 }), /temperature/);
      assert.throws(() => opcdLoss(a, a, { temperature: T, topK: 0 }), /topK/);
      assert.throws(() => forwardKlLoss(a, b, { temperature: T, topK: 2 }), /same shape/);
    } finally { a.dispose(); b.dispose(); }
    const empty = tf.zeros([0, 5]) as tf.Tensor2D;
    const g = tf.grad((x: tf.Tensor) => opcdLoss(x as tf.Tensor2D, empty, { temperature: T, topK: 2 }))(empty);
    assert.deepEqual(g.shape, [0, 5]);
    g.dispose();
    assert.equal(value(opcdLoss(empty, empty, { temperature: T, topK: 2 })), 0);
    empty.dispose();
  });

  it('leaks no tensors', () => {
    const before = tf.memory().numTensors;
    const student = randomLogits(3, 6, 51);
    const teacher = randomLogits(3, 6, 52);
    lossAndGrads(opcdLoss, student, teacher, { temperature: T, topK: 3, mask: [1, 0, 1] });
    lossAndGrads(forwardKlLoss, student, teacher, { temperature: T, topK: 3 });
    assert.equal(tf.memory().numTensors, before, `on ${backend}`);
  });
}

describe('OPCD and forward-KL losses (cpu backend)', () => {
  before(async () => { await tf.setBackend('cpu'); });
  suite('cpu');
});

describe('OPCD and forward-KL losses (wasm backend)', () => {
  before(async () => { await initBackend({ force: 'wasm', threads: 1, log: () => {} }); });
  after(async () => { await tf.setBackend('cpu'); });
  suite('wasm');
});

describe('following a changed answer: the gradient toward the teacher\'s new answer (cpu backend)', () => {
  before(async () => { await tf.setBackend('cpu'); });

  it('is nearly zero under OPCD when the student is sure of the old answer, and strong with the forward KL added', () => {
    // Vocabulary of 8: the student is sure of token 2 (the old answer), the teacher of token 5 (the new one).
    const row = (sure: number) => Array.from({ length: 8 }, (_, v) => (v === sure ? 9 : 0));
    const student = tf.tensor2d([row(2)]);
    const teacher = tf.tensor2d([row(5)]);
    const pull = (method: 'opcd' | 'off-policy' | 'opcd-forward') => {
      const g = tf.grad((s: tf.Tensor) => distillationLoss(method, s as tf.Tensor2D, teacher, { temperature: 0.7, topK: 8 }))(student);
      const toward = -(g.arraySync() as number[][])[0]![5]!; // minus the gradient: how much a step raises the new answer's logit
      g.dispose();
      return toward;
    };
    const opcd = pull('opcd');
    const forward = pull('opcd-forward');
    assert.ok(opcd >= 0 && opcd < 1e-3, `OPCD's pull toward the new answer: ${opcd}`);
    assert.ok(forward > 0.5, `reverse plus forward KL: ${forward}`);
    assert.ok(Math.abs(forward - opcd - pull('off-policy')) < 1e-5, 'opcd-forward is the sum of the two losses');
    student.dispose(); teacher.dispose();
  });
});

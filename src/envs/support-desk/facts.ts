/**
 * The policy facts of the support-desk world: what a company's customers ask about, the values a
 * fact takes (drawn per company, widely varying), how a customer asks (phrasings, split so that
 * test questions use phrasings never used in deployment), how the assistant states it, and the
 * experience item that records it. Pure data and text.
 */

/** How a fact's value is drawn and written. */
export type FactValues =
  /** n × step for every whole n from min to max (step 1 unless given), written by format. */
  | { kind: 'integer'; min: number; max: number; step?: number; format: (n: number) => string }
  | { kind: 'choice'; options: readonly string[] };

export interface Fact {
  id: string;
  /** What the fact is called in corrections and items ("refund window"). */
  topic: string;
  values: FactValues;
  /** Customer questions. Deployment conversations use `asked`; test questions use `testOnly`, never used in deployment. */
  asked: readonly string[];
  testOnly: readonly string[];
  /**
   * The sentence that states value v: the assistant's answer, and the experience item that records
   * it (one line). One wording for both, so a model that has the item in its context answers by
   * finding the sentence that starts like its answer and copying the value.
   */
  item: (v: string) => string;
}

const days = (n: number) => `${n} days`;
const dollars = (n: number) => `$${n}`;

export const FACTS: readonly Fact[] = [
  {
    id: 'refund_window', topic: 'refund window', values: { kind: 'integer', min: 5, max: 120, format: days },
    asked: ['How long do I have to ask for a refund?', 'What is your refund window?', 'Until when can I get my money back?', 'How many days do I have to return an order for a refund?'],
    testOnly: ['If I change my mind, how long can I still get a refund?', 'Is there a time limit on refunds?'],
    item: (v) => `The refund window is ${v}.`,
  },
  {
    id: 'warranty', topic: 'warranty', values: { kind: 'integer', min: 2, max: 60, format: (n) => `${n} months` },
    asked: ['How long is the warranty?', 'What warranty do your products have?', 'How long are products covered against defects?', 'Is my device still under warranty after a year? How long does it last?'],
    testOnly: ['For how many months is a product guaranteed?', 'What does the guarantee period come to?'],
    item: (v) => `The warranty lasts ${v}.`,
  },
  {
    id: 'support_hours', topic: 'support hours',
    values: { kind: 'choice', options: ['6am to 2pm', '7am to 3pm', '7am to 7pm', '8am to 4pm', '8am to 6pm', '8am to 8pm', '9am to 5pm', '9am to 9pm', '10am to 6pm', '10am to 10pm', '11am to 7pm', 'noon to 8pm', '24 hours a day'] },
    asked: ['When is your support team available?', 'What are your support hours?', 'At what times can I reach support?', 'When are you open for questions?'],
    testOnly: ['Until what time can I get help today?', 'What hours does the help desk work?'],
    item: (v) => `Support hours are ${v}.`,
  },
  {
    id: 'shipping_regions', topic: 'shipping regions',
    values: { kind: 'choice', options: ['the EU only', 'the US only', 'the US and Canada', 'the UK only', 'Europe and Asia', 'Australia and New Zealand', 'North America', 'South America', 'Japan only', 'the Nordic countries', 'Germany and Austria', 'everywhere in the world'] },
    asked: ['Where do you ship to?', 'Which countries do you deliver to?', 'Can you ship to my country? Where do you deliver?', 'What regions do you ship orders to?'],
    testOnly: ['Where in the world can I have my order sent?', 'Which places are covered by your delivery?'],
    item: (v) => `We ship to ${v}.`,
  },
  {
    id: 'basic_price', topic: 'basic plan price', values: { kind: 'integer', min: 3, max: 35, format: dollars },
    asked: ['How much is the basic plan?', 'What does the basic plan cost per month?', 'What is the price of your cheapest plan?', 'How much do I pay each month for basic?'],
    testOnly: ['What would the entry-level subscription set me back?', 'Price of the starter tier, please?'],
    item: (v) => `The basic plan costs ${v} a month.`,
  },
  {
    id: 'pro_price', topic: 'pro plan price', values: { kind: 'integer', min: 36, max: 199, format: dollars },
    asked: ['How much is the pro plan?', 'What does the pro plan cost per month?', 'What is the price of the pro subscription?', 'How much do I pay each month for pro?'],
    testOnly: ['What would upgrading to the professional tier cost me monthly?', 'Price of the premium tier, please?'],
    item: (v) => `The pro plan costs ${v} a month.`,
  },
  {
    id: 'escalation', topic: 'escalation address',
    values: { kind: 'choice', options: ['urgent@help.desk', 'care@help.desk', 'lead@help.desk', 'vip@help.desk', 'ops@help.desk', 'fix@help.desk', 'chief@help.desk', 'priority@help.desk', 'rescue@help.desk', 'escalate@help.desk', 'senior@help.desk', 'manager@help.desk'] },
    asked: ['Who can I write to if my problem is not solved?', 'What is the escalation address?', 'Where do I send a complaint to a manager?', 'How do I escalate my ticket?'],
    testOnly: ['Nobody fixed my issue. Which email goes to someone senior?', 'Is there an address for urgent complaints?'],
    item: (v) => `The escalation address is ${v}.`,
  },
  {
    id: 'free_shipping', topic: 'free shipping threshold', values: { kind: 'integer', min: 2, max: 40, step: 5, format: dollars },
    asked: ['When is shipping free?', 'How much do I need to spend for free shipping?', 'Is there a minimum order for free delivery?', 'Above what amount do you ship for free?'],
    testOnly: ['What order total gets me delivery at no cost?', 'How big must my basket be to skip the postage fee?'],
    item: (v) => `Shipping is free for orders over ${v}.`,
  },
  {
    id: 'delivery_time', topic: 'delivery time', values: { kind: 'integer', min: 1, max: 21, format: (n) => `${n} business days` },
    asked: ['How long does delivery take?', 'When will my order arrive?', 'How many days until my package comes?', 'What is the usual delivery time?'],
    testOnly: ['How soon after ordering should I expect the parcel?', 'How quickly do you get things to customers?'],
    item: (v) => `Delivery takes ${v}.`,
  },
  {
    id: 'return_shipping', topic: 'return shipping cost', values: { kind: 'integer', min: 0, max: 19, format: (n) => (n === 0 ? 'free' : `$${n}`) },
    asked: ['How much does it cost to send an item back?', 'Do I pay for return shipping?', 'What is the fee for returns?', 'Is return postage free?'],
    testOnly: ['If I send the parcel back, what will the postage cost me?', 'What does a return label cost?'],
    item: (v) => `Return shipping is ${v}.`,
  },
  {
    id: 'trial_length', topic: 'free trial', values: { kind: 'integer', min: 3, max: 60, format: days },
    asked: ['How long is the free trial?', 'Can I try it for free? For how long?', 'How many days is the trial period?', 'How long can I test the product before paying?'],
    testOnly: ['Before the first charge, how long do I get to try things out?', 'What is the length of the no-cost evaluation?'],
    item: (v) => `The free trial lasts ${v}.`,
  },
  {
    id: 'cancellation_notice', topic: 'cancellation notice', values: { kind: 'integer', min: 1, max: 90, format: days },
    asked: ['How much notice do I need to give to cancel?', 'How early must I cancel my subscription?', 'What is the notice period for cancelling?', 'When do I have to cancel before the next billing?'],
    testOnly: ['If I want to quit, how far ahead must I tell you?', 'What lead time do you need to end my contract?'],
    item: (v) => `Cancellation needs ${v} notice.`,
  },
  {
    id: 'phone_support', topic: 'phone support',
    values: { kind: 'choice', options: ['weekdays only', 'every day', 'weekends only', 'on business plans only', 'Monday to Saturday', 'evenings only', 'mornings only', 'Tuesdays and Thursdays', 'not offered at all', 'on pro plans only'] },
    asked: ['Can I call you?', 'When can I reach you by phone?', 'Do you have phone support?', 'Is there a number I can call, and when?'],
    testOnly: ['Could I speak to a person on the telephone, and on which days?', 'Are your agents reachable by voice call?'],
    item: (v) => `Phone support is ${v}.`,
  },
  {
    id: 'data_retention', topic: 'data retention', values: { kind: 'integer', min: 7, max: 365, format: days },
    asked: ['How long do you keep my data after I close my account?', 'When is my data deleted after closing the account?', 'What is your data retention period?', 'How long is my data stored once I leave?'],
    testOnly: ['After I delete my profile, how long until my information is gone?', 'For how long are records of former customers kept?'],
    item: (v) => `Data is kept for ${v} after an account is closed.`,
  },
  {
    id: 'device_limit', topic: 'device limit', values: { kind: 'integer', min: 1, max: 12, format: (n) => `${n} ${n === 1 ? 'device' : 'devices'}` },
    asked: ['On how many devices can I use my account?', 'How many devices can I log in on?', 'What is the device limit?', 'Can I use my account on several devices? How many?'],
    testOnly: ['How many phones and laptops may share one subscription?', 'Up to how many machines can be signed in at once?'],
    item: (v) => `One account works on ${v} at a time.`,
  },
  {
    id: 'student_discount', topic: 'student discount', values: { kind: 'integer', min: 1, max: 12, step: 5, format: (n) => `${n}%` },
    asked: ['Do you have a student discount?', 'How much do students save?', 'What discount do students get?', 'Is there a price reduction for students?'],
    testOnly: ['I am at university. Do I get anything off?', 'What is the reduction for people in education?'],
    item: (v) => `Students get ${v} off.`,
  },
];

/** All values a fact can take, in order. */
export function factValues(fact: Fact): string[] {
  const v = fact.values;
  if (v.kind === 'choice') return [...v.options];
  const step = v.step ?? 1;
  const out: string[] = [];
  for (let n = v.min; n <= v.max; n++) out.push(v.format(n * step));
  return out;
}

/** The assistant's answer stating value v (the fact's sentence). */
export const answerWith = (fact: Fact, v: string): string => fact.item(v);

export const factById = (id: string): Fact => {
  const f = FACTS.find((x) => x.id === id);
  if (!f) throw new Error(`support desk: no fact ${JSON.stringify(id)}`);
  return f;
};

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The values of `fact` that a text states, longest first: a value counts where it stands alone
 * ("$5" is not in "$50", "5 days" not in "15 days"). The assistant's answer is right when it
 * states exactly the true value and no other.
 */
export function statedValues(fact: Fact, text: string): string[] {
  const found: string[] = [];
  let rest = text;
  for (const v of factValues(fact).sort((a, b) => b.length - a.length)) {
    const re = new RegExp(`(?<![\\w$@.])${escapeRegExp(v)}(?![\\w@]|\\.\\w)`, 'i');
    if (re.test(rest)) { found.push(v); rest = rest.replace(re, ' '); }
  }
  return found;
}

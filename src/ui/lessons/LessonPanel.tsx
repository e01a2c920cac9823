/**
 * The Lessons panel: the list of lessons with progress, or the open step — its text, the
 * action (Run / Freeze / Step / Resume), the question and the verdict. It outlines the
 * step's part of the inspector, scrolls it into view, and while a step asks "click the…"
 * turns clicks on the inspector's `data-lab` elements into answers.
 */
import { Fragment, useEffect, useRef, useState, useSyncExternalStore, type ReactNode } from 'react';
import { ringFromUrl } from '../vm-client.ts';
import { parseTarget } from '../inspector/targets.ts';
import { stat } from './checks.ts';
import type { LessonEngine } from './engine.ts';
import type { LessonView, Step } from './types.ts';
import './lessons.css';

function useEngine(engine: LessonEngine) {
  return useSyncExternalStore(
    (l) => engine.subscribe(l),
    () => engine.current,
  );
}

/** Re-renders whenever the inspector repaints (for highlights and deltas that follow the live state). */
function useRepaints(engine: LessonEngine): number {
  const [n, setN] = useState(0);
  useEffect(() => engine.onRepaint(() => setN((x) => x + 1)), [engine]);
  return n;
}

/** `code` spans in a paragraph. */
function inline(text: string): ReactNode[] {
  return text.split(/(`[^`]+`)/).map((part, i) => (part.startsWith('`') && part.endsWith('`') ? <code key={i}>{part.slice(1, -1)}</code> : <Fragment key={i}>{part}</Fragment>));
}

function targetsOf(step: Step | undefined, view: LessonView | undefined): string[] {
  const h = step?.highlight;
  if (!h) return [];
  let t: string | readonly string[] | undefined;
  try {
    t = typeof h === 'function' ? (view ? h(view) : undefined) : h;
  } catch {
    t = undefined; // a highlight that cannot find its part outlines nothing
  }
  return t === undefined ? [] : typeof t === 'string' ? [t] : [...t];
}

const selectorOf = (t: string) => (t.startsWith('css:') ? t.slice(4) : `[data-lab="${CSS.escape(t)}"]`);

const ACTION_LABEL = { freeze: 'Freeze', step: 'Step', resume: 'Resume' } as const;

/** The lessons walk split rings' avail and used rings, which a packed VM does not have. */
function PackedNotice() {
  const split = new URLSearchParams(location.search);
  split.delete('ring');
  const href = `?${split.toString()}`;
  return (
    <p className="lessons-notice" data-testid="lessons-packed-notice">
      These lessons follow split virtqueues (§2.7); this VM runs packed ones (§2.8), so steps that
      look for the avail and used rings cannot pass. <a href={href}>Reload with split rings</a>.
    </p>
  );
}

function LessonList({ engine }: { engine: LessonEngine }) {
  return (
    <div className="lessons-list">
      <p className="lessons-intro">Guided tours through the live rings: each step says what to do in the terminal or the inspector, points at what to look at, and asks a question you answer from what you see.</p>
      <ol>
        {engine.lessons.map((l) => {
          const p = engine.progress(l.id);
          const done = p.passed.length;
          return (
            <li key={l.id} data-testid={`lesson-${l.id}`}>
              <button type="button" className="lesson-open" onClick={() => engine.open(l.id)}>
                <strong>{l.title}</strong>
                <span className="lesson-summary">{l.summary}</span>
                <span className={`lesson-progress ${done === l.steps.length ? 'done' : ''}`}>
                  {done === 0 ? `${l.steps.length} steps` : `${done} of ${l.steps.length} steps done`}
                </span>
              </button>
            </li>
          );
        })}
      </ol>
    </div>
  );
}

function Deltas({ engine, queue }: { engine: LessonEngine; queue: number }) {
  const v = engine.view();
  const q = v?.fn.queues[queue];
  const s = v?.start?.fn.queues[queue];
  if (!q || !s) return <div className="lesson-deltas ins-dim">Counters since you press Run appear here.</div>;
  const rows: [string, number][] = [
    ['requests', q.counters.requests - s.counters.requests],
    ['kicks', q.counters.kicks - s.counters.kicks],
    ['completions', q.counters.completions - s.counters.completions],
    ['interrupts', q.counters.interrupts - s.counters.interrupts],
  ];
  // The NIC's own count of frames it put on the wire, beside the queue's count of chains.
  if (v.fn.name === 'virtio-net') rows.push(['NIC tx frames', stat(v.devices, 'net', 'txFrames') - stat(v.start!.devices, 'net', 'txFrames')]);
  return (
    <div className="lesson-deltas" data-testid="lesson-deltas">
      <span>{q.name} since Run:</span>
      {rows.map(([name, d]) => (
        <span key={name} data-delta={name}>
          {name} <b>+{d.toLocaleString('en-US')}</b>
        </span>
      ))}
    </div>
  );
}

function StepView({ engine }: { engine: LessonEngine }) {
  const state = useEngine(engine);
  useRepaints(engine);
  const lesson = state.lesson!;
  const step = lesson.steps[state.step]!;
  const [typed, setTyped] = useState('');
  useEffect(() => setTyped(''), [lesson, state.step]);
  const view = engine.view();
  const action = step.action;
  const command = engine.command();
  const passed = engine.progress(lesson.id).passed;
  return (
    <div className="lesson-step" data-testid="lesson-step" data-lesson={lesson.id} data-step={state.step + 1}>
      <header className="lesson-head">
        <button type="button" className="lesson-back" onClick={() => engine.close()} data-testid="lesson-close" title="Back to the list (resumes any queue this lesson froze)">
          ← Lessons
        </button>
        <strong>{lesson.title}</strong>
      </header>
      <nav className="lesson-dots" aria-label="steps">
        {lesson.steps.map((s, i) => (
          <button key={i} type="button" className={`${i === state.step ? 'at' : ''} ${passed.includes(i) ? 'passed' : ''}`} onClick={() => engine.goto(i)} title={s.title} aria-label={`step ${i + 1}: ${s.title}`}>
            {i + 1}
          </button>
        ))}
      </nav>
      <h3 data-testid="lesson-title">
        {state.step + 1}. {step.title}
      </h3>
      <div className="lesson-text">
        {step.text.split(/\n\s*\n/).map((p, i) => (
          <p key={i}>{inline(p.replace(/\s*\n\s*/g, ' '))}</p>
        ))}
      </div>
      <div className="lesson-cite">
        {step.cite.map((c) => (
          <span key={c}>{c}</span>
        ))}
      </div>
      {action && (
        <div className="lesson-action" data-testid="lesson-action">
          {action.kind === 'run' ? (
            <>
              <div className="lesson-label">Do: run in the terminal</div>
              <pre data-testid="lesson-command">{command ?? '(waiting for the inspector…)'}</pre>
              <button type="button" className="lesson-run" onClick={() => engine.run()} disabled={command === undefined} data-testid="lesson-run">
                ▶ Run
              </button>
              {action.waits && <span className="ins-dim"> the terminal waits until the queue is served</span>}
            </>
          ) : (
            <>
              <div className="lesson-label">
                Do: click <b>{ACTION_LABEL[action.kind]}</b> on {view?.fn.queues[action.queue]?.name ?? `queue ${action.queue}`} in the inspector (outlined)
              </div>
              <button type="button" className="lesson-run" onClick={() => engine.act()} data-testid="lesson-act">
                {ACTION_LABEL[action.kind]}
              </button>
            </>
          )}
        </div>
      )}
      {step.deltas !== undefined && <Deltas engine={engine} queue={step.deltas} />}
      <div className={`lesson-check ${state.verdict ? (state.verdict.ok ? 'right' : 'wrong') : ''}`} data-testid="lesson-check">
        <div className="lesson-label">Check</div>
        <p className="lesson-question">{inline(step.check.question)}</p>
        {step.check.kind === 'click' ? (
          <p className="ins-dim">Click your answer in the inspector.</p>
        ) : (
          <form
            onSubmit={(e) => {
              e.preventDefault();
              engine.answerNumber(typed);
            }}
          >
            <input value={typed} onChange={(e) => setTyped(e.target.value)} inputMode="numeric" aria-label="your answer" data-testid="lesson-input" />
            <button type="submit" data-testid="lesson-submit">
              Check
            </button>
          </form>
        )}
        {state.verdict && (
          <p className="lesson-verdict" data-testid="lesson-verdict" data-ok={state.verdict.ok ? '1' : '0'} data-look={state.verdict.ok ? undefined : state.verdict.look}>
            {state.verdict.ok ? '✓ Right. ' : '✗ Not quite. '}
            {inline(state.verdict.ok ? (state.verdict.say ?? '') : state.verdict.why)}
          </p>
        )}
      </div>
      <footer className="lesson-nav">
        <button type="button" onClick={() => engine.prev()} disabled={state.step === 0} data-testid="lesson-prev">
          Back
        </button>
        <span className="spacer" />
        {state.step + 1 < lesson.steps.length ? (
          <button type="button" className={state.verdict?.ok ? 'primary' : ''} onClick={() => engine.next()} data-testid="lesson-next">
            Next →
          </button>
        ) : (
          <button type="button" className={state.verdict?.ok ? 'primary' : ''} onClick={() => engine.close()} data-testid="lesson-finish">
            Finish
          </button>
        )}
      </footer>
    </div>
  );
}

/** Outlines the step's targets (and the one a wrong answer points at) and scrolls them into view. */
function Highlighter({ engine }: { engine: LessonEngine }) {
  const state = useEngine(engine);
  useRepaints(engine);
  const step = engine.step;
  const targets = targetsOf(step, engine.view());
  const look = state.verdict && !state.verdict.ok ? state.verdict.look : undefined;
  const scrolled = useRef('');
  const key = `${state.lesson?.id}/${state.step}/${look ?? targets.join(',')}`;
  useEffect(() => {
    if (scrolled.current === key) return;
    const first = look ?? targets[0];
    if (!first) return;
    const el = document.querySelector(selectorOf(first));
    if (!el) return; // not painted yet: try again at the next repaint
    scrolled.current = key;
    el.scrollIntoView({ block: 'center', inline: 'nearest' });
  });
  const answering = step?.check.kind === 'click';
  useEffect(() => {
    document.body.classList.toggle('lab-answering', answering);
    return () => document.body.classList.remove('lab-answering');
  }, [answering]);
  const rules = [
    targets.length > 0 && `${targets.map(selectorOf).join(', ')} { outline: 2px solid #f5c518 !important; outline-offset: 1px; background-color: #f5c51822 !important; }`,
    look && `${selectorOf(look)} { outline: 2px dashed #ff8a96 !important; outline-offset: 1px; }`,
  ].filter(Boolean);
  return <style data-testid="lesson-highlight">{rules.join('\n')}</style>;
}

/** Clicks inside the inspector: control buttons are actions, `data-lab` elements are answers. */
function useInspectorClicks(engine: LessonEngine): void {
  useEffect(() => {
    const onClick = (e: MouseEvent) => {
      if (!engine.current.lesson) return;
      const el = e.target instanceof Element ? e.target.closest('[data-lab]') : null;
      const inspector = el?.closest('[data-testid="inspector"]');
      if (!el || !inspector) return;
      const t = el.getAttribute('data-lab')!;
      const parsed = parseTarget(t);
      if (parsed.kind === 'control') {
        const device = inspector.querySelector('[data-testid^="ins-fn-"]')?.getAttribute('data-testid')?.slice('ins-fn-'.length);
        if (device && parsed.queue !== undefined) engine.noteAction(device, parsed.queue, parsed.args[1] as 'freeze' | 'step' | 'resume');
        return;
      }
      if (engine.step?.check.kind !== 'click') return;
      if (e.target instanceof Element && e.target.closest('button, select, summary, input')) return;
      e.preventDefault();
      engine.answerClick(t);
    };
    document.addEventListener('click', onClick, true);
    return () => document.removeEventListener('click', onClick, true);
  }, [engine]);
}

export function LessonPanel({ engine }: { engine: LessonEngine }) {
  const state = useEngine(engine);
  useInspectorClicks(engine);
  return (
    <section className="lessons" data-testid="lessons">
      <h2>Lessons</h2>
      {ringFromUrl() === 'packed' && <PackedNotice />}
      {state.lesson ? (
        <>
          <StepView engine={engine} />
          <Highlighter engine={engine} />
        </>
      ) : (
        <LessonList engine={engine} />
      )}
    </section>
  );
}

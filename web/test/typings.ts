// typings.ts: compile-time checks, by `tsc -p web/tsconfig.json` in CI,
// that sdk/calls.d.ts describes sdk/calls.js. It is never run.
//
// '../sdk/calls.js' resolves to the typings (a .d.ts next to a .js wins);
// '#calls-js' is mapped by tsconfig.json's paths to the JavaScript itself,
// whose types tsc infers from the code and its JSDoc (checkJs).

import * as typed from '../sdk/calls.js';
import * as impl from '#calls-js';

// Every export the typings declare exists in the JavaScript, with a type
// the typings accept: functions, the Mode constants, CallError, and the
// Calls class's static side (connect) and instances (every property and
// method, on() returning its unsubscribe function).
export const exportsAreTyped: typeof typed = impl;

// And the JavaScript exports nothing the typings leave out.
type Untyped = Exclude<keyof typeof impl, keyof typeof typed>;
export const nothingUntyped: [Untyped] extends [never] ? true : Untyped = true;

// The layer calls and event as an app uses them.
export async function followsLayers(c: typed.Calls, video: HTMLVideoElement): Promise<number> {
  await c.setPreference('bob', 'cam', { maxHeight: 180 });
  await c.setPreference('bob', 'cam', { paused: true });
  const unfollow: () => void = c.followElement('bob', 'cam', video);
  unfollow();
  let h = 0;
  c.on('track:layer', (e) => {
    const layer: 'q' | 'h' | 'f' | null = e.layer;
    const why: 'preference' | 'bandwidth' | 'publisher' | null = e.limitedBy;
    h = layer === null || why === 'publisher' ? 0 : e.height + e.width;
  });
  return h;
}

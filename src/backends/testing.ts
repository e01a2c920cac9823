/** Test helper: which BlockBackendError kind a call throws ('no error' if none). */
import { BlockBackendError } from './block-backend.ts';

export function backendErrorKind(f: () => void): string {
  try {
    f();
  } catch (e) {
    return e instanceof BlockBackendError ? e.kind : `not a BlockBackendError: ${String(e)}`;
  }
  return 'no error';
}

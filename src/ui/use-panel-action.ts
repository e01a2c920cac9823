/**
 * A side panel's one action at a time (create, upload, save…): what it is busy with, the
 * message it ended with (error or done), and the panel's list refreshed afterwards.
 */
import { useCallback, useState } from 'react';

export interface PanelMessage {
  text: string;
  error: boolean;
}

/** `refresh` lists the panel's items again (its failure becomes the message). */
export function usePanelAction(refresh: () => Promise<void>) {
  const [busy, setBusy] = useState<string>();
  const [message, setMessage] = useState<PanelMessage>();
  const reload = useCallback(async () => {
    try {
      await refresh();
    } catch (e) {
      setMessage({ text: (e as Error).message, error: true });
    }
  }, [refresh]);
  /** Runs `fn` labelled `label`; its string result (or `done`) becomes the message. */
  const act = async (label: string, fn: () => Promise<string | void>, done?: string) => {
    setBusy(label);
    setMessage(undefined);
    try {
      const said = await fn();
      const text = said || done;
      if (text) setMessage({ text, error: false });
    } catch (e) {
      setMessage({ text: (e as Error).message, error: true });
    } finally {
      setBusy(undefined);
      void reload();
    }
  };
  return { busy, setBusy, message, act, reload };
}

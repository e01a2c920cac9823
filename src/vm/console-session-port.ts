/**
 * Where run()'s port lives on the machine, and how a session in the same thread (Node: the
 * runner and the integration tests) is wired to it. The browser's session sits on the page,
 * so the worker relays the same three things as messages instead (see worker.ts).
 */
import type { ConsolePort, VirtioConsole } from '../devices/console/console.ts';
import { AGENT_PORT } from './console-session-agent.ts';
import type { ConsoleSession } from './console-session.ts';
import type { LabDevices } from './lab-devices.ts';

/** The virtio-console port the guest agent serves run() on, if the machine has one. */
export function agentPort(devices: LabDevices): ConsolePort | undefined {
  return (devices.console?.device as VirtioConsole | undefined)?.port(AGENT_PORT);
}

/** Lets `session` run commands over `port` whenever the guest has it open. */
export function connectAgentPort(session: ConsoleSession, port: ConsolePort): void {
  session.attachAgent((bytes) => port.write(bytes));
  port.onData = (bytes) => session.agentData(bytes);
  port.onOpen = (open) => session.agentOpen(open);
  if (port.guestOpen) session.agentOpen(true);
}

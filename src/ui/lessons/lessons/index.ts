/** The lessons, in order. Adding one: a file in this folder and a line here. */
import type { Lesson } from '../types.ts';
import { devices } from './01-devices.ts';
import { blockRead } from './02-block-read.ts';
import { indices } from './03-indices.ts';
import { notifications } from './04-notifications.ts';
import { indirect } from './05-indirect.ts';
import { netReceive } from './06-net-receive.ts';
import { netOffloads } from './07-net-offloads.ts';
import { reset } from './08-reset.ts';

export const LESSONS: readonly Lesson[] = [devices, blockRead, indices, notifications, indirect, netReceive, netOffloads, reset];

/**
 * The lessons, in file-name order. Adding one is adding a file here, `NN-name.ts`, that
 * exports one Lesson (it may export helpers beside it); nothing else lists them.
 */
import type { Lesson } from '../types.ts';

const isLesson = (x: unknown): x is Lesson => typeof x === 'object' && x !== null && 'id' in x && Array.isArray((x as Lesson).steps);

const files = import.meta.glob<Record<string, unknown>>('./[0-9][0-9]-*.ts', { eager: true });

export const LESSONS: readonly Lesson[] = Object.keys(files)
  .sort()
  .map((file) => {
    const lessons = Object.values(files[file]).filter(isLesson);
    if (lessons.length !== 1) throw new Error(`${file} exports ${lessons.length} lessons; a lesson file exports exactly one`);
    return lessons[0];
  });

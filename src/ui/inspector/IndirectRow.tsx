/** The row under a ring descriptor with INDIRECT set: its table's entries, folded when long, or why it could not be read. */
import type { ReactNode } from 'react';
import type { DescRow, Unreadable } from '../../virtio/inspect/types.ts';

export const isUnreadable = (v: object): v is Unreadable => 'unreadable' in v;

export function IndirectRow({ colSpan, table, summary, children }: { colSpan: number; table: readonly DescRow[] | Unreadable; summary: (rows: readonly DescRow[]) => ReactNode; children: (rows: readonly DescRow[]) => ReactNode }) {
  return (
    <tr>
      <td />
      <td colSpan={colSpan} className="ins-indirect">
        {isUnreadable(table) ? (
          <span className="ins-err">{table.unreadable}</span>
        ) : (
          <details open={table.length <= 4}>
            {summary(table)}
            <table>{children(table)}</table>
          </details>
        )}
      </td>
    </tr>
  );
}

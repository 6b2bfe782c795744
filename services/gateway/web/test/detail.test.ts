import { describe, expect, it } from 'vitest';
import { detailColumns } from '../src/lib/detail';
import type { DetailHistory } from '../src/types';

const at = (secs: number) => new Date(secs * 1000).toISOString();

describe('detailColumns', () => {
  it('aligns lines on every bucket, null where a line has none, and breaks over holes', () => {
    const history: DetailHistory = {
      serverId: 's',
      series: 'mounts',
      unit: 'percent',
      from: at(0),
      to: at(600),
      bucketSecs: 60,
      lines: [
        { name: '/', points: [0, 60, 300].map((t) => ({ t: at(t), samples: 60, avg: t / 60 })) },
        { name: '/data', points: [{ t: at(60), samples: 60, avg: 7 }] },
      ],
    };
    expect(detailColumns(history)).toEqual({
      names: ['/', '/data'],
      data: [
        [0, 60, 120, 300],
        [0, 1, null, 5],
        [null, 7, null, null],
      ],
    });
  });
});

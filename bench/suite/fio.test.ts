import { describe, expect, it } from 'vitest';
import { DISK_JOBS, fioCommand, interruptCount, parseFioTerse } from './fio.ts';

// Captured from fio 3.33 in the lab's guest (1 s randread and write, 4 KiB, libaio).
const RANDREAD = '3;fio-3.33;bench;0;0;4128;4123;1030;1001;64;12521;214.864672;812.387342;687;21915;3491.706707;3914.642265;1.000000%=733;5.000000%=790;10.000000%=815;20.000000%=913;30.000000%=1011;40.000000%=1138;50.000000%=1417;60.000000%=1794;70.000000%=5210;80.000000%=5799;90.000000%=9502;95.000000%=10944;99.000000%=20054;99.500000%=21364;99.900000%=21889;99.950000%=21889;99.990000%=21889;0%=0;0%=0;0%=0;786;22023;3706.571380;3995.481363;4974;4974;100.000000%;4974.000000;0.000000;0;0;0;0;0;0;0.000000;0.000000;0;0;0.000000;0.000000;1.000000%=0;5.000000%=0;10.000000%=0;20.000000%=0;30.000000%=0;40.000000%=0;50.000000%=0;60.000000%=0;70.000000%=0;80.000000%=0;90.000000%=0;95.000000%=0;99.000000%=0;99.500000%=0;99.900000%=0;99.950000%=0;99.990000%=0;0%=0;0%=0;0%=0;0;0;0.000000;0.000000;0;0;0.000000%;0.000000;0.000000;0.000000%;59.200000%;259;0;13;0.1%;0.2%;99.7%;0.0%;0.0%;0.0%;0.0%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;2.23%;26.65%;34.88%;3.29%;24.90%;6.88%;1.16%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;vda;980;0;0;0;2306;0;2306;0.00%';
const WRITE = '3;fio-3.33;bench;0;0;0;0;0;0;0;0;0.000000;0.000000;0;0;0.000000;0.000000;1.000000%=0;5.000000%=0;10.000000%=0;20.000000%=0;30.000000%=0;40.000000%=0;50.000000%=0;60.000000%=0;70.000000%=0;80.000000%=0;90.000000%=0;95.000000%=0;99.000000%=0;99.500000%=0;99.900000%=0;99.950000%=0;99.990000%=0;0%=0;0%=0;0%=0;0;0;0.000000;0.000000;0;0;0.000000%;0.000000;0.000000;3928;3889;972;1010;35;12664;205.320348;928.533757;398;29565;3680.813995;4567.197591;1.000000%=436;5.000000%=489;10.000000%=518;20.000000%=577;30.000000%=659;40.000000%=856;50.000000%=1302;60.000000%=1941;70.000000%=5079;80.000000%=7766;90.000000%=9764;95.000000%=11599;99.000000%=21889;99.500000%=27394;99.900000%=29491;99.950000%=29491;99.990000%=29491;0%=0;0%=0;0%=0;467;29624;3886.134343;4659.140444;3565;4215;100.000000%;3890.000000;459.619408;0.000000%;57.086224%;246;0;13;0.1%;0.2%;99.7%;0.0%;0.0%;0.0%;0.0%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;6.62%;30.35%;6.01%;18.02%;5.60%;25.05%;6.92%;1.43%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;0.00%;vda;0;876;0;0;0;1962;1963;0.00%';
const job = (id: string) => DISK_JOBS.find((j) => j.id === id)!;

describe('fio terse parsing', () => {
  it('reads the read group for read jobs: requests from KiB moved, rates over fio\'s own runtime', () => {
    const r = parseFioTerse(`noise\n${RANDREAD}\n`, job('rnd-read-1'));
    const f = RANDREAD.split(';');
    const kib = Number(f[5]);
    expect(r.requests).toBe(kib / 4);
    expect(r.iops).toBeCloseTo(kib / 4 / (Number(f[8]) / 1000), 6);
    expect(Math.abs(r.iops - Number(f[7]))).toBeLessThan(1); // fio's own rounded IOPS
  });

  it('reads the write group for write jobs', () => {
    const r = parseFioTerse(WRITE, job('rnd-write-1'));
    const f = WRITE.split(';');
    expect(r.requests).toBe(Number(f[46]) / 4);
    expect(Math.abs(r.iops - Number(f[48]))).toBeLessThan(1);
    expect(r.MBps).toBeCloseTo((Number(f[46]) * 1024) / (Number(f[49]) / 1000) / 1e6, 6);
  });

  it('refuses output with no terse line, or a job that moved nothing', () => {
    expect(() => parseFioTerse('fio: failed to open /dev/vda', job('seq-read'))).toThrow(/no terse line/);
    expect(() => parseFioTerse(WRITE, job('seq-read'))).toThrow(/moved nothing/);
  });

  it('builds one job line that differs between columns only in the device', () => {
    const a = fioCommand(job('rnd-read-32'), '/dev/sda', 5, 256);
    const b = fioCommand(job('rnd-read-32'), '/dev/vda', 5, 256);
    expect(a.replace('/dev/sda', '/dev/vda')).toBe(b);
    expect(a).toMatch(/--ioengine=libaio --direct=1 --time_based --runtime=5 .*--iodepth=32/);
  });
});

describe('/proc/interrupts', () => {
  const proc = [
    '           CPU0       ',
    '  0:        298    XT-PIC      timer',
    '  4:       1139    XT-PIC      ttyS0',
    ' 11:         79    XT-PIC      virtio0, virtio1',
    ' 14:        512    XT-PIC      ata_piix',
    'NMI:          0   Non-maskable interrupts',
  ].join('\n');
  it('counts the lines whose names match', () => {
    expect(interruptCount(proc, /virtio/)).toBe(79);
    expect(interruptCount(proc, /ata_piix/)).toBe(512);
    expect(interruptCount(proc, /nothing/)).toBe(0);
  });
});

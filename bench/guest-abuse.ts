/**
 * `npm run abuse:guest -- [--loops N] [--json]` (issue 8): the real Linux 6.1 guest misbehaves
 * towards our devices with its own drivers while I/O is in flight, and the devices must come
 * back every time with the VM still usable.
 *
 * Per device (rng, blk, net), N loops in which the driver lets go and comes back through
 * sysfs, rotating virtio-level unbind/bind (/sys/bus/virtio/drivers/virtio_X), PCI-level
 * unbind/bind (/sys/bus/pci/drivers/virtio-pci) and PCI remove + rescan, with I/O running when
 * it lets go (a /dev/hwrng reader; fio at iodepth 16 on /dev/vda; a ping flood). After each,
 * the device must work again: 64 bytes from /dev/hwrng; fresh data written and read back
 * O_DIRECT, md5 checked in the guest and again in the host's image file; carrier, a DHCP lease
 * and a ping to the gateway.
 *
 * Then rogue register writes through /dev/port, behind the drivers' backs (the guest has no
 * /dev/mem or setpci, and our functions offer no PCI reset method: there is no
 * /sys/bus/pci/devices/X/reset): device_status = 0 under I/O, then a rebind; garbage in the
 * other common-cfg registers and non-zero garbage in device_status while fio runs.
 *
 * The lab below is also what test/integration/misbehaviour.test.ts drives, with fewer loops.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { attachRelay, type Relay } from '../src/relay/index.ts';
import { CommonCfg } from '../src/virtio/pci/layout.ts';
import type { VirtioPciFunction } from '../src/virtio/pci/virtio-pci-function.ts';
import { startNodeVm, type NodeVm } from '../src/vm/node/node-machine.ts';
import { figure, type Figure } from './stats.ts';

export type AbuseDevice = 'rng' | 'blk' | 'net';
/**
 * How the driver lets go and comes back: virtio-level unbind/bind, PCI-level (virtio-pci)
 * unbind/bind, or PCI hot-unplug (/sys/bus/pci/devices/X/remove) and a bus rescan, after
 * which Linux assigns BAR0 anew (v86 moves our I/O ports with it).
 */
export const BIND_METHODS = ['virtio', 'pci', 'replug'] as const;
export type BindMethod = (typeof BIND_METHODS)[number];

const MiB = 1 << 20;
const DISK_SIZE = 64 * MiB;
/** Fresh data after blk loop i goes to 64 KiB block 512 + i % 256 (32..48 MiB), clear of fio's 0..16 MiB. */
const FRESH_BLOCK = 65536;

const GUEST = {
  rng: { driver: 'virtio_rng', pciDevice: '0x1044' },
  blk: { driver: 'virtio_blk', pciDevice: '0x1042' },
  net: { driver: 'virtio_net', pciDevice: '0x1041' },
} as const;

/**
 * Shell functions the loops run in the guest (busybox ash), written to /tmp/abuse.sh once.
 * Each loop prints one `L device i method key=value ...` line; timings come from /proc/uptime
 * (v86 paces the guest clock by the host's), so one run() can cover several loops.
 * `@{` stands for the shell's `${`, which a template literal would take for its own.
 */
const GUEST_LIB = String.raw`
cs() { read -r u _ < /proc/uptime; echo $(( @{u%.*} * 100 + 1@{u#*.} - 100 )); }
waitfor() { n=0; until eval "$1"; do n=$((n + 1)); [ $n -ge $2 ] && return 1; sleep 0.05; done; }
alive() { [ -e /proc/$1 ]; }
vdev() { for v in /sys/bus/pci/devices/$1/virtio*; do [ -e "$v" ] && echo @{v##*/}; done; }
unbind() { case $3 in
  pci) echo $1 > /sys/bus/pci/drivers/virtio-pci/unbind ;;
  replug) echo 1 > /sys/bus/pci/devices/$1/remove ;;
  *) V=$(vdev $1); echo $V > /sys/bus/virtio/drivers/$2/unbind ;;
esac; }
bind() { case $3 in
  pci) echo $1 > /sys/bus/pci/drivers/virtio-pci/bind ;;
  replug) echo 1 > /sys/bus/pci/rescan ;;
  *) echo $V > /sys/bus/virtio/drivers/$2/bind ;;
esac; }
bar() { read -r b _ < /sys/bus/pci/devices/$1/resource; printf '%x' $b; }
inflight() { if [ -r /sys/block/vda/inflight ]; then read -r r w < /sys/block/vda/inflight; echo $((r + w)); else echo 0; fi; }
wios() { w=0; read -r _ _ _ _ w _ < /sys/block/vda/stat; echo $w; } 2>/dev/null
busy() { w0=$(wios); waitfor '[ $(($(wios) - w0)) -ge 32 ]' 200; }
carrier() { c=0; read -r c < /sys/class/net/eth0/carrier; [ "$c" = 1 ]; } 2>/dev/null
poke() { p=$1; shift; s=; for b; do s="$s\\$(printf %o $b)"; done; printf "$s" | dd of=/dev/port bs=1 seek=$p conv=notrunc 2>/dev/null; }
peek() { dd if=/dev/port bs=1 skip=$1 count=1 2>/dev/null | od -An -tu1 | tr -d ' '; }
fiobg() { fio --name=bg --filename=/dev/vda --direct=1 --bs=4k --size=16m --rw=randwrite --ioengine=libaio --iodepth=16 --time_based --runtime=$1 --output-format=terse --terse-version=3 >/tmp/bg.out 2>/tmp/bg.err & B=$!; }
fioerr() { e=$(grep ';' /tmp/bg.out 2>/dev/null | cut -d';' -f5 | head -n 1); echo @{e:-none}; }
fresh() {
  dd if=/dev/urandom of=/tmp/pat bs=64k count=1 2>/dev/null
  dd if=/tmp/pat of=/dev/vda bs=64k seek=$1 oflag=direct 2>/dev/null || { echo "verify=werr md5=-"; return; }
  a=$(md5sum < /tmp/pat); b=$(dd if=/dev/vda bs=64k skip=$1 count=1 iflag=direct 2>/dev/null | md5sum)
  [ "$a" = "$b" ] && echo "verify=ok md5=@{a%% *}" || echo "verify=bad md5=@{a%% *}"
}
lease() {
  ip link set eth0 up; waitfor carrier 100; c=$?
  udhcpc -i eth0 -n -q -t 5 -T 1 -s /usr/share/udhcpc/default.script >/dev/null 2>&1; l=$?
  ping -c 1 -W 2 10.0.2.2 >/dev/null 2>&1; p=$?
  echo "carrier=$c lease=$l ping=$p"
}
rng_loop() {
  t=$(cs)
  dd if=/dev/hwrng of=/dev/null bs=512 count=1000000 2>/dev/null & B=$!
  sleep 0.05; unbind $3 virtio_rng $2; bind $3 virtio_rng $2
  if alive $B; then kill $B; bg=killed; else bg=ended; fi; wait $B
  n=$(timeout 5 head -c 64 /dev/hwrng | wc -c)
  echo "L rng $1 $2 reader=$bg got=$n bar=$(bar $3) ms=$(( ($(cs) - t) * 10 ))"
}
blk_loop() {
  t=$(cs); fiobg 60
  busy; b=$?
  unbind $3 virtio_blk $2
  waitfor '! alive $B' 100; stuck=$?; [ $stuck = 0 ] || kill -9 $B; wait $B; rc=$?
  bind $3 virtio_blk $2
  waitfor '[ -b /dev/vda ]' 100; off=$((512 + $1 % 256))
  echo "L blk $1 $2 busy=$b stuck=$stuck rc=$rc fioerr=$(fioerr) off=$off $(fresh $off) bar=$(bar $3) ms=$(( ($(cs) - t) * 10 ))"
}
net_loop() {
  t=$(cs)
  ping -i 0.02 10.0.2.2 >/dev/null 2>&1 & B=$!
  sleep 0.1; unbind $3 virtio_net $2; bind $3 virtio_net $2
  kill $B; wait $B
  echo "L net $1 $2 $(lease) bar=$(bar $3) ms=$(( ($(cs) - t) * 10 ))"
}
dstate() { grep -l '^State:.D' /proc/[0-9]*/status 2>/dev/null | wc -l; }
`.replaceAll('@{', '${');

export interface LoopRecord {
  device: AbuseDevice;
  index: number;
  method: BindMethod;
  ok: boolean;
  /** Guest time for the whole loop (I/O start, unbind, bind, check), ms. */
  ms: number;
  fields: Record<string, string>;
}

export interface DmesgSummary {
  /** "I/O error" lines: expected while a disk goes away under fio. */
  ioErrors: number;
  /** BUG:/WARNING:/Oops/Call Trace/hung-task lines: never expected. */
  alarms: string[];
}

export interface PhaseReport {
  device: AbuseDevice;
  loops: number;
  ok: number;
  failures: LoopRecord[];
  byMethod: Record<BindMethod, number>;
  /** Distinct BAR0 bases the guest reported after the loops (rescans relocate it). */
  bar0Bases: number;
  msPerLoop: Figure;
  /** Host wall time over all loops / loops. */
  wallMsPerLoop: number;
  /** DeviceStats.resets counted by our function during the phase. */
  resets: number;
  /** Errors our function reported (onDeviceError) during the phase. */
  deviceErrors: number;
  dmesg: DmesgSummary;
  /** blk: loops whose background fio saw an I/O error (it should: the disk vanished under it). */
  guestIoErrorLoops?: number;
  /** blk: fio's error field (errno) per loop → count; 28 (ENOSPC): del_gendisk sets the capacity to 0. */
  fioErrnos?: Record<string, number>;
  /** blk: blocks whose last fresh data the host found in the image file, byte for byte. */
  hostVerified?: number;
  /** rng: bytes our device served during the phase. */
  bytesServed?: number;
}

export interface RogueReport {
  name: string;
  ok: boolean;
  detail: Record<string, string>;
  resets: number;
  deviceErrors: number;
}

export interface HealthReport {
  answers: boolean;
  /** Processes in uninterruptible sleep (the guest kernel has no hung-task detector). */
  dState: number;
  dmesg: DmesgSummary;
}

function parseFields(words: string[]): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const w of words) {
    const eq = w.indexOf('=');
    if (eq > 0) fields[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return fields;
}

export function summarizeDmesg(text: string): DmesgSummary {
  const lines = text.split('\n');
  return {
    ioErrors: lines.filter((l) => /I\/O error/.test(l)).length,
    alarms: lines.filter((l) => /BUG:|WARNING:|Oops|Call Trace|blocked for more than|hung_task|soft lockup/.test(l)),
  };
}

function loopOk(device: AbuseDevice, f: Record<string, string>): boolean {
  switch (device) {
    case 'rng':
      return f.got === '64';
    case 'blk':
      return f.busy === '0' && f.verify === 'ok' && f.stuck === '0';
    case 'net':
      return f.carrier === '0' && f.lease === '0' && f.ping === '0';
  }
}

const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');

export class GuestAbuseLab {
  private constructor(
    readonly vm: NodeVm,
    private readonly relay: Relay,
    private readonly server: Server,
    private readonly dir: string,
    readonly image: string,
  ) {}

  /** Boots the lab machine with a blank 64 MiB disk and a NIC on a private relay. */
  static async start(opts: { onSerial?(bytes: Uint8Array): void } = {}): Promise<GuestAbuseLab> {
    const server = createServer((_, res) => res.writeHead(404).end());
    const relay = attachRelay(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtio-lab-abuse-'));
    const image = path.join(dir, 'abuse.img');
    fs.writeFileSync(image, '');
    fs.truncateSync(image, DISK_SIZE);
    const vm = await startNodeVm({
      disk: { path: image, name: 'abuse' },
      net: { relayUrl: `ws://127.0.0.1:${port}/relay/abuse` },
      onSerial: opts.onSerial,
    });
    const lab = new GuestAbuseLab(vm, relay, server, dir, image);
    try {
      await vm.session.ready;
      await lab.prepare();
    } catch (error) {
      await lab.stop();
      throw error;
    }
    return lab;
  }

  fn(device: AbuseDevice): VirtioPciFunction {
    const fn = this.vm.machine.devices[device];
    if (!fn) throw new Error(`no ${device} function`);
    return fn;
  }

  /** The function's PCI address as the guest names it (bus 0, function 0). */
  pciAddress(device: AbuseDevice): string {
    const slot = this.fn(device).location()?.slot;
    if (slot === undefined) throw new Error(`${device}: slot unknown`);
    return `0000:00:${slot.toString(16).padStart(2, '0')}.0`;
  }

  /** I/O port of a common-cfg register of the function (BAR0 is an I/O BAR in the lab). */
  commonPort(device: AbuseDevice, register: number): number {
    const fn = this.fn(device);
    const bar0 = fn.location()?.bar0;
    if (bar0 === undefined || fn.bars[0]?.kind !== 'io') throw new Error(`${device}: BAR0 is not a known I/O BAR`);
    return bar0 + fn.layout.common.offset + register;
  }

  stats(device: AbuseDevice) {
    const s = this.vm.machine.deviceStats().find((d) => d.name === this.fn(device).name);
    if (!s) throw new Error(`no stats for ${device}`);
    return s;
  }

  async sh(cmd: string, timeoutMs = 60_000): Promise<string> {
    const r = await this.vm.session.run(cmd, { timeoutMs });
    if (r.status !== 0) throw new Error(`guest command failed (${r.status}): ${cmd}\n${r.output}`);
    return r.output;
  }

  /** Guest-side set-up: the raw disk for fio, no background DHCP client, the loop functions. */
  private async prepare(): Promise<void> {
    await this.sh('for i in $(seq 50); do ip -4 addr show eth0 | grep -q inet && break; sleep 0.2; done; ip -4 addr show eth0 | grep -q inet');
    await this.sh('umount /mnt/disk; killall udhcpc; true');
    await this.sh(`cat > /tmp/abuse.sh <<'EOF_ABUSE'${GUEST_LIB}EOF_ABUSE\n. /tmp/abuse.sh && type blk_loop >/dev/null`);
    for (const device of ['rng', 'blk', 'net'] as const) {
      const addr = this.pciAddress(device);
      const ids = (await this.sh(`cat /sys/bus/pci/devices/${addr}/vendor /sys/bus/pci/devices/${addr}/device`)).trim().split('\n');
      if (ids[0] !== '0x1af4' || ids[1] !== GUEST[device].pciDevice) throw new Error(`${addr} is ${ids.join(':')}, not our ${device}`);
    }
    await this.dmesg(); // start each phase with an empty ring
  }

  /** dmesg since the last call (dmesg -c). */
  async dmesg(): Promise<string> {
    return this.sh('dmesg -c');
  }

  /**
   * `loops` unbind/bind loops of one device with I/O in flight, alternating virtio-level and
   * PCI-level unbinding; `onLoop` sees each loop as it is parsed.
   */
  async rebindLoops(device: AbuseDevice, loops: number, onLoop?: (r: LoopRecord) => void): Promise<PhaseReport> {
    const addr = this.pciAddress(device);
    const before = this.stats(device);
    const errorsBefore = this.vm.deviceErrors.length;
    const records: LoopRecord[] = [];
    const chunk = device === 'rng' ? 10 : 5;
    const t0 = performance.now();
    for (let start = 0; start < loops; start += chunk) {
      const n = Math.min(chunk, loops - start);
      const calls: string[] = [];
      for (let i = start; i < start + n; i++) calls.push(`${device}_loop ${i} ${BIND_METHODS[i % BIND_METHODS.length]} ${addr}`);
      const out = await this.sh(`. /tmp/abuse.sh; ${calls.join('; ')}`, 30_000 * n);
      for (const line of out.split('\n')) {
        const words = line.trim().split(/\s+/);
        if (words[0] !== 'L' || words[1] !== device) continue;
        const fields = parseFields(words.slice(4));
        const record: LoopRecord = {
          device,
          index: Number(words[2]),
          method: words[3] as BindMethod,
          ok: loopOk(device, fields),
          ms: Number(fields.ms),
          fields,
        };
        records.push(record);
        onLoop?.(record);
      }
    }
    const wall = performance.now() - t0;
    const after = this.stats(device);
    const report: PhaseReport = {
      device,
      loops: records.length,
      ok: records.filter((r) => r.ok).length,
      failures: records.filter((r) => !r.ok),
      byMethod: Object.fromEntries(BIND_METHODS.map((m) => [m, records.filter((r) => r.method === m).length])) as Record<BindMethod, number>,
      bar0Bases: new Set(records.map((r) => r.fields.bar)).size,
      msPerLoop: figure(records.map((r) => r.ms)),
      wallMsPerLoop: wall / Math.max(1, records.length),
      resets: after.resets - before.resets,
      deviceErrors: this.vm.deviceErrors.length - errorsBefore,
      dmesg: summarizeDmesg(await this.dmesg()),
    };
    if (device === 'rng') report.bytesServed = after.extra.bytesServed - before.extra.bytesServed;
    if (device === 'blk') {
      report.fioErrnos = {};
      for (const r of records) report.fioErrnos[r.fields.fioerr ?? '?'] = (report.fioErrnos[r.fields.fioerr ?? '?'] ?? 0) + 1;
      report.guestIoErrorLoops = records.filter((r) => r.fields.rc !== '0' || (r.fields.fioerr ?? '0') !== '0').length;
      // Past 256 loops blocks are reused: the host can only check each block's last write.
      const last = new Map(records.map((r) => [r.fields.off, r]));
      report.hostVerified = [...last.values()].filter((r) => this.imageMd5(Number(r.fields.off)) === r.fields.md5).length;
    }
    return report;
  }

  /** md5 of one 64 KiB block of the host's image file. */
  imageMd5(block: number): string {
    const buf = new Uint8Array(FRESH_BLOCK);
    const fd = fs.openSync(this.image, 'r');
    try {
      fs.readSync(fd, buf, 0, FRESH_BLOCK, block * FRESH_BLOCK);
    } finally {
      fs.closeSync(fd);
    }
    return md5(buf);
  }

  private async rogue(name: string, device: AbuseDevice, script: string, ok: (d: Record<string, string>) => boolean): Promise<RogueReport> {
    const before = this.stats(device);
    const errorsBefore = this.vm.deviceErrors.length;
    const out = await this.sh(`. /tmp/abuse.sh; ${script}`, 120_000);
    const line = out.split('\n').find((l) => l.startsWith('R ')) ?? '';
    const detail = parseFields(line.trim().split(/\s+/).slice(1));
    return {
      name,
      ok: ok(detail),
      detail,
      resets: this.stats(device).resets - before.resets,
      deviceErrors: this.vm.deviceErrors.length - errorsBefore,
    };
  }

  /**
   * device_status = 0 written behind the driver's back under I/O (rng: a /dev/hwrng reader,
   * which then waits forever: Linux has no timeout; net: a ping flood), then a virtio-level
   * rebind, which must serve again (rng: 64 bytes; net: carrier, lease, ping).
   */
  rogueResetRebind(device: 'rng' | 'net'): Promise<RogueReport> {
    const addr = this.pciAddress(device);
    const status = this.commonPort(device, CommonCfg.DEVICE_STATUS);
    const io = {
      rng: { what: 'a reader', start: 'dd if=/dev/hwrng of=/dev/null bs=512 count=1000000 2>/dev/null', check: 'got=$(timeout 5 head -c 64 /dev/hwrng | wc -c)' },
      net: { what: 'a ping flood', start: 'ping -i 0.02 10.0.2.2 >/dev/null 2>&1', check: '$(lease)' },
    }[device];
    return this.rogue(
      `${device}: device_status=0 under ${io.what}, then rebind`,
      device,
      `${io.start} & B=$!; sleep 0.2; poke ${status} 0; st=$(peek ${status}); sleep 0.3;
       unbind ${addr} ${GUEST[device].driver} virtio; bind ${addr} ${GUEST[device].driver} virtio; alive $B && kill $B; wait $B;
       echo "R poked=$st ${io.check} status=$(peek ${status})"`,
      (d) => d.poked === '0' && d.status === '15' && (device === 'rng' ? d.got === '64' : d.carrier === '0' && d.lease === '0' && d.ping === '0'),
    );
  }

  /**
   * While fio runs on /dev/vda: non-zero garbage in device_status (0xff, which carries
   * DEVICE_NEEDS_RESET and FAILED; values that clear DRIVER_OK and FEATURES_OK) and garbage in
   * the other common-cfg registers (queue select/size/enable/addresses of an enabled queue and
   * of a queue that does not exist, the feature windows after FEATURES_OK, MSI-X vectors) and
   * an extra notify. None of it is a reset: fio must finish without an error, then a rebind
   * and fresh data must verify.
   */
  rogueGarbageBlk(): Promise<RogueReport> {
    const addr = this.pciAddress('blk');
    const c = this.commonPort('blk', 0);
    const st = c + CommonCfg.DEVICE_STATUS;
    const notify = this.fn('blk').location()!.bar0 + this.fn('blk').layout.notify.offset;
    const C = CommonCfg;
    return this.rogue(
      'blk: garbage in device_status and common cfg under fio (no reset)',
      'blk',
      `fiobg 3; busy; b=$?;
       poke ${st} 255; s1=$(peek ${st}); poke ${st} 7; poke ${st} 64; poke ${st} 3; poke ${st} 1; s2=$(peek ${st});
       poke ${c + C.QUEUE_SELECT} 3 0; poke ${c + C.QUEUE_SIZE} 7 0; poke ${c + C.QUEUE_ENABLE} 1 0; poke ${c + C.QUEUE_DESC_LO} 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24;
       poke ${c + C.QUEUE_SELECT} 0 0; poke ${c + C.QUEUE_SIZE} 3 0; poke ${c + C.QUEUE_ENABLE} 0 0; poke ${c + C.QUEUE_DESC_LO} 0 16 0 0 0 0 0 0 0 32 0 0 0 0 0 0 0 48;
       poke ${c + C.DRIVER_FEATURE_SELECT} 1 0 0 0; poke ${c + C.DRIVER_FEATURE} 255 255 255 255; poke ${c + C.DRIVER_FEATURE_SELECT} 0 0 0 0; poke ${c + C.DRIVER_FEATURE} 0 0 0 0;
       poke ${c + C.DEVICE_FEATURE_SELECT} 7 0 0 0; poke ${c + C.CONFIG_MSIX_VECTOR} 1 0; poke ${c + C.QUEUE_MSIX_VECTOR} 5 0; poke ${notify} 0 0;
       waitfor '! alive $B' 200; stuck=$?; [ $stuck = 0 ] || kill -9 $B; wait $B; rc=$?;
       unbind ${addr} virtio_blk virtio; bind ${addr} virtio_blk virtio; waitfor '[ -b /dev/vda ]' 100;
       echo "R busy=$b after-0xff=$s1 after-clears=$s2 stuck=$stuck rc=$rc fioerr=$(fioerr) $(fresh 900) status=$(peek ${st})"`,
      (d) => d.busy === '0' && d.stuck === '0' && d.rc === '0' && d.fioerr === '0' && d.verify === 'ok' && d.status === '15',
    );
  }

  /** device_status = 0 while the disk is idle but bound: a rebind brings it back. */
  rogueResetBlkIdle(): Promise<RogueReport> {
    const addr = this.pciAddress('blk');
    const st = this.commonPort('blk', CommonCfg.DEVICE_STATUS);
    return this.rogue(
      'blk: device_status=0 while idle, then rebind',
      'blk',
      `poke ${st} 0; p=$(peek ${st}); unbind ${addr} virtio_blk pci; bind ${addr} virtio_blk pci; waitfor '[ -b /dev/vda ]' 100;
       echo "R poked=$p $(fresh 901) status=$(peek ${st})"`,
      (d) => d.poked === '0' && d.verify === 'ok' && d.status === '15',
    );
  }

  /**
   * device_status = 0 under fio at iodepth 16: the device forgets the rings (as a reset must),
   * so the requests Linux had queued are stranded — 6.1's virtio_blk has no request timeout
   * and del_gendisk would wait for them forever, so no rebind is tried. What must hold: our
   * code throws nothing, the device stays reset, the VM still answers. Leaves /dev/vda dead.
   */
  rogueResetBlkUnderIo(): Promise<RogueReport> {
    const st = this.commonPort('blk', CommonCfg.DEVICE_STATUS);
    return this.rogue(
      'blk: device_status=0 under fio (strands the disk; last)',
      'blk',
      `fiobg 30; busy; poke ${st} 0; sleep 2;
       alive $B && a=1 || a=0; echo "R poked=$(peek ${st}) stranded=$(inflight) fio-waiting=$a"`,
      (d) => d.poked === '0' && Number(d.stranded) > 0,
    );
  }

  async health(): Promise<HealthReport> {
    const r = await this.vm.session.run('. /tmp/abuse.sh; echo D=$(dstate)', { timeoutMs: 30_000 });
    const dState = Number(/D=(\d+)/.exec(r.output)?.[1] ?? NaN);
    return { answers: r.status === 0, dState, dmesg: summarizeDmesg(await this.dmesg()) };
  }

  async stop(): Promise<void> {
    try {
      await this.vm.stop();
    } finally {
      await this.relay.close();
      this.server.close();
      fs.rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

// ---- the command ---------------------------------------------------------------------------

function parseArgs(argv: string[]): { loops: number; json: boolean } {
  let loops = 100;
  const at = argv.indexOf('--loops');
  if (at >= 0) {
    loops = Number(argv[at + 1]);
    if (!Number.isInteger(loops) || loops < 1) throw new Error(`--loops wants a positive integer, got ${argv[at + 1]}`);
  }
  return { loops, json: argv.includes('--json') };
}

async function main(): Promise<number> {
  const { loops, json } = parseArgs(process.argv.slice(2));
  const exceptions: string[] = [];
  process.on('uncaughtException', (e) => exceptions.push(`uncaught: ${e instanceof Error ? e.stack : String(e)}`));
  process.on('unhandledRejection', (e) => exceptions.push(`unhandled rejection: ${e instanceof Error ? e.stack : String(e)}`));

  const t0 = performance.now();
  const lab = await GuestAbuseLab.start();
  console.log(`booted and prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${loops} loops per device`);
  const phases: PhaseReport[] = [];
  const rogue: RogueReport[] = [];
  let health: HealthReport | undefined;
  let strand: RogueReport | undefined;
  let aborted: string | undefined;
  try {
    for (const device of ['rng', 'blk', 'net'] as const) {
      const p = await lab.rebindLoops(device, loops, (r) => {
        if (!r.ok) console.log(`  ${device} loop ${r.index} (${r.method}) FAILED: ${JSON.stringify(r.fields)}`);
        else if ((r.index + 1) % 10 === 0) process.stdout.write(`  ${device}: ${r.index + 1}/${loops}\r`);
      });
      phases.push(p);
      console.log(`${device}: ${p.ok}/${p.loops} loops ok`.padEnd(40));
    }
    rogue.push(await lab.rogueResetRebind('rng'), await lab.rogueResetRebind('net'), await lab.rogueGarbageBlk(), await lab.rogueResetBlkIdle());
    health = await lab.health();
    strand = await lab.rogueResetBlkUnderIo();
    rogue.push(strand);
  } catch (error) {
    aborted = error instanceof Error ? error.message : String(error);
  }
  const answersAtEnd = await lab.vm.session
    .run('echo alive', { timeoutMs: 20_000 })
    .then((r) => r.output.trim() === 'alive')
    .catch(() => false);
  const deviceErrors = [...lab.vm.deviceErrors];
  const functionErrors = (['rng', 'blk', 'net'] as const).map((d) => lab.stats(d).errors).reduce((a, b) => a + b, 0);
  await lab.stop();

  const f1 = (f: Figure | undefined) => (f && f.runs.length ? `${f.median.toFixed(0)} (${f.min.toFixed(0)}–${f.max.toFixed(0)})` : '–');
  console.log('\n| device | loops ok | virtio/pci/replug | BAR0 bases | guest ms per loop, median (min–max) | host wall ms per loop | device resets | device errors | guest I/O errors: loops (fio errno) / dmesg lines | fresh data verified (guest / host) |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const p of phases) {
    const blk = p.device === 'blk';
    console.log(
      `| ${p.device} | ${p.ok}/${p.loops} | ${BIND_METHODS.map((m) => p.byMethod[m]).join('/')} | ${p.bar0Bases} | ${f1(p.msPerLoop)} | ${p.wallMsPerLoop.toFixed(0)} | ${p.resets} | ${p.deviceErrors} | ` +
        `${blk ? `${p.guestIoErrorLoops} (${Object.entries(p.fioErrnos ?? {}).map(([e, n]) => `${e}×${n}`).join(', ')}) / ${p.dmesg.ioErrors}` : `– / ${p.dmesg.ioErrors}`} | ` +
        `${blk ? `${p.ok} / ${p.hostVerified}` : p.device === 'rng' ? `${p.bytesServed} bytes served` : 'lease + ping'} |`,
    );
  }
  console.log('\nrogue register writes (/dev/port):');
  for (const r of rogue) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name}: ${JSON.stringify(r.detail)}, resets ${r.resets}, device errors ${r.deviceErrors}`);
  if (health) {
    console.log(`\nguest: answers ${health.answers}, D-state processes ${health.dState} (before the stranding step), dmesg alarms ${health.dmesg.alarms.length}`);
    for (const a of health.dmesg.alarms) console.log(`  ${a}`);
  }
  for (const p of phases) for (const a of p.dmesg.alarms) console.log(`  dmesg (${p.device}): ${a}`);
  console.log(`host: device errors ${deviceErrors.length}, function error counters ${functionErrors}, exceptions ${exceptions.length}, VM answers at the end ${answersAtEnd}`);
  for (const e of [...deviceErrors.map((d) => `${d.device}: ${d.reason}`), ...exceptions]) console.log(`  ${e}`);
  if (aborted) console.log(`ABORTED: ${aborted}`);
  if (json) console.log(JSON.stringify({ loops, phases, rogue, health, deviceErrors, exceptions, answersAtEnd, aborted }, null, 1));

  const failed =
    aborted !== undefined ||
    !answersAtEnd ||
    exceptions.length > 0 ||
    deviceErrors.length > 0 ||
    phases.some((p) => p.ok !== p.loops || p.dmesg.alarms.length > 0) ||
    rogue.some((r) => !r.ok || r.deviceErrors > 0) ||
    (health !== undefined && (health.dState > 0 || health.dmesg.alarms.length > 0));
  return failed ? 1 : 0;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then(
    (code) => process.exit(code),
    (error) => {
      console.error(error);
      process.exit(1);
    },
  );
}

/**
 * Classic libpcap capture files (the format Wireshark and tshark open everywhere):
 * a 24-byte global header (magic 0xa1b2c3d4, version 2.4, linktype 1 = Ethernet) and per
 * packet a 16-byte record header (seconds, microseconds, captured length, original length).
 *
 * PcapRing keeps the most recent packets within a byte budget, so a capture can stay on
 * for a whole session and the download holds "the last N MiB".
 */
export const PCAP_MAGIC = 0xa1b2c3d4;
export const PCAP_VERSION_MAJOR = 2;
export const PCAP_VERSION_MINOR = 4;
export const LINKTYPE_ETHERNET = 1;
export const PCAP_GLOBAL_HEADER_SIZE = 24;
export const PCAP_RECORD_HEADER_SIZE = 16;

export interface PcapRingOptions {
  /** Budget for stored packets, record headers included (default 8 MiB). */
  maxBytes?: number;
  /** Bytes kept of each packet (default 65535); orig_len still says how long it was. */
  snaplen?: number;
  /** Wall clock in milliseconds with a fractional part (default performance.timeOrigin + performance.now()). */
  now?: () => number;
}

interface PcapRecord {
  /** Microseconds since the epoch. */
  timeUs: number;
  /** Where its bytes start in the ring's virtual byte stream (see PcapRing). */
  at: number;
  length: number;
  origLen: number;
}

/**
 * The packets' bytes live in one buffer of maxBytes, written round and round: a capture
 * that is always on copies every frame the NIC moves, and a fresh ArrayBuffer per frame cost
 * the VM's worker more than the copy itself (first writes to new memory fault its pages in).
 * Offsets are virtual (they only grow); a packet that would not fit before the buffer's end
 * starts at the next lap, and a packet more than one buffer behind the newest is overwritten.
 */
export class PcapRing {
  readonly maxBytes: number;
  readonly snaplen: number;
  private readonly now: () => number;
  private records: PcapRecord[] = [];
  private head = 0;
  private storedBytes = 0;
  /** Made on the first packet. */
  private store: Uint8Array | undefined;
  private writeAt = 0;
  /** Packets dropped from the front to stay within maxBytes. */
  evicted = 0;
  /** Packets recorded in all (kept or evicted). */
  recorded = 0;

  constructor(opts: PcapRingOptions = {}) {
    this.maxBytes = opts.maxBytes ?? 8 << 20;
    this.snaplen = opts.snaplen ?? 65535;
    this.now = opts.now ?? (() => performance.timeOrigin + performance.now());
  }

  /** Packets currently held. */
  get length(): number {
    return this.records.length - this.head;
  }

  /** Size of the file toUint8Array() would produce. */
  get fileSize(): number {
    return PCAP_GLOBAL_HEADER_SIZE + this.storedBytes;
  }

  /** Copy `frame` into the ring (the caller may reuse its buffer). */
  record(frame: Uint8Array, timeMs = this.now()): void {
    const length = Math.min(frame.length, this.snaplen);
    const cost = PCAP_RECORD_HEADER_SIZE + length;
    this.recorded++;
    if (cost > this.maxBytes) {
      this.evicted++;
      return;
    }
    const store = (this.store ??= new Uint8Array(this.maxBytes));
    const size = store.length;
    let at = this.writeAt;
    if ((at % size) + length > size) at += size - (at % size); // to the next lap
    // Evict what the budget or the new bytes' place needs, oldest first.
    while (this.length > 0) {
      const old = this.records[this.head];
      if (this.storedBytes + cost <= this.maxBytes && old.at >= at + length - size) break;
      this.head++;
      this.storedBytes -= PCAP_RECORD_HEADER_SIZE + old.length;
      this.evicted++;
    }
    store.set(frame.subarray(0, length), at % size);
    this.records.push({ timeUs: Math.round(timeMs * 1000), at, length, origLen: frame.length });
    this.storedBytes += cost;
    this.writeAt = at + length;
    if (this.head > 1024 && this.head * 2 > this.records.length) {
      this.records = this.records.slice(this.head);
      this.head = 0;
    }
  }

  clear(): void {
    this.records = [];
    this.head = 0;
    this.storedBytes = 0;
  }

  /** The capture as a pcap file. */
  toUint8Array(): Uint8Array<ArrayBuffer> {
    const out = new Uint8Array(this.fileSize);
    const dv = new DataView(out.buffer);
    writePcapGlobalHeader(dv, this.snaplen);
    let at = PCAP_GLOBAL_HEADER_SIZE;
    for (let i = this.head; i < this.records.length; i++) {
      const r = this.records[i];
      dv.setUint32(at, Math.floor(r.timeUs / 1e6), true);
      dv.setUint32(at + 4, r.timeUs % 1e6, true);
      dv.setUint32(at + 8, r.length, true);
      dv.setUint32(at + 12, r.origLen, true);
      const from = r.at % this.store!.length;
      out.set(this.store!.subarray(from, from + r.length), at + PCAP_RECORD_HEADER_SIZE);
      at += PCAP_RECORD_HEADER_SIZE + r.length;
    }
    return out;
  }

  /** For a download link (type application/vnd.tcpdump.pcap). */
  toBlob(): Blob {
    return new Blob([this.toUint8Array()], { type: 'application/vnd.tcpdump.pcap' });
  }
}

/** Little-endian global header: readers detect byte order from the magic. */
function writePcapGlobalHeader(dv: DataView, snaplen: number): void {
  dv.setUint32(0, PCAP_MAGIC, true);
  dv.setUint16(4, PCAP_VERSION_MAJOR, true);
  dv.setUint16(6, PCAP_VERSION_MINOR, true);
  dv.setInt32(8, 0, true); // thiszone: timestamps are UTC
  dv.setUint32(12, 0, true); // sigfigs
  dv.setUint32(16, snaplen, true);
  dv.setUint32(20, LINKTYPE_ETHERNET, true);
}

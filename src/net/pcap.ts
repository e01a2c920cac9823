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
  data: Uint8Array;
  origLen: number;
}

export class PcapRing {
  readonly maxBytes: number;
  readonly snaplen: number;
  private readonly now: () => number;
  private records: PcapRecord[] = [];
  private head = 0;
  private storedBytes = 0;
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
    const data = frame.slice(0, this.snaplen);
    const cost = PCAP_RECORD_HEADER_SIZE + data.length;
    this.recorded++;
    if (cost > this.maxBytes) {
      this.evicted++;
      return;
    }
    this.records.push({ timeUs: Math.round(timeMs * 1000), data, origLen: frame.length });
    this.storedBytes += cost;
    while (this.storedBytes > this.maxBytes) {
      const old = this.records[this.head++];
      this.storedBytes -= PCAP_RECORD_HEADER_SIZE + old.data.length;
      this.evicted++;
    }
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
      dv.setUint32(at + 8, r.data.length, true);
      dv.setUint32(at + 12, r.origLen, true);
      out.set(r.data, at + PCAP_RECORD_HEADER_SIZE);
      at += PCAP_RECORD_HEADER_SIZE + r.data.length;
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

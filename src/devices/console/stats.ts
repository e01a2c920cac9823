/**
 * Counters of a virtio-console device for the UI, the inspector and benchmarks. Kicks and
 * interrupts are the transport's (VirtioPciFunction.stats); these are the device's own.
 * "tx" is guest → host (the transmitq), "rx" host → guest (the receiveq), as the spec names them.
 */
export class ConsoleStats {
  /** Bytes and buffers the guest sent on any port, and the bytes the host queued for it. */
  txBytes = 0;
  txBuffers = 0;
  rxBytes = 0;
  rxBuffers = 0;
  /** Guest buffers longer than the per-buffer cap: only the cap was read. */
  txTruncated = 0;
  /** Host writes refused because the port's backlog was full. */
  rxDropsBacklogFull = 0;
  /** Control messages in each direction. */
  controlIn = 0;
  controlOut = 0;
  /** Guest control messages ignored: shorter than 8 bytes, unknown event, port out of range, repeated. */
  controlIgnored = 0;
  /** Device control messages dropped: the guest left no control receive buffers for too long. */
  controlDropped = 0;
  /** Ports the guest has open now. */
  openPorts = 0;

  toRecord(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, value] of Object.entries(this)) if (typeof value === 'number') out[key] = value;
    return out;
  }
}

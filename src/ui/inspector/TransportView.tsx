/** A function's transport: status bits, features offered/accepted, BAR, config fields. */
import type { FunctionSnapshot } from '../../virtio/inspect/types.ts';
import { DeviceStatus } from '../../virtio/constants.ts';
import { featureHelp, help } from './glossary.ts';
import { target } from './targets.ts';

export function TransportView({ fn }: { fn: FunctionSnapshot }) {
  return (
    <section className="ins-transport" data-testid="ins-transport">
      <div className="ins-row">
        <span className="ins-label" title={help('status')}>
          device_status <code data-lab={target.statusValue}>0x{fn.status.toString(16).padStart(2, '0')}</code>
        </span>
        {Object.keys(DeviceStatus).map((name) => (
          <span key={name} data-lab={target.statusBit(name)} className={`ins-bit ${fn.statusNames.includes(name) ? 'on' : ''} ${name === 'DEVICE_NEEDS_RESET' || name === 'FAILED' ? 'bad' : ''}`} title={help(name)}>
            {name}
          </span>
        ))}
      </div>
      <div className="ins-row ins-small">
        <span title={help('bar')} data-lab={target.bar0}>
          BAR0 {fn.bar.kind === 'io' ? 'I/O' : 'memory'} · {fn.bar.size} B
          {fn.pci && ` @ 0x${fn.pci.bar0.toString(16)}`}
        </span>
        {fn.pci && <span title="PCI bus 0 device number the host placed the function in">slot {fn.pci.slot}</span>}
        <span title="PCI interrupt pin INTA (§4.1.4.5: no MSI-X here, so the ISR byte tells queue from config interrupts); the line is the PIC input the PIRQ router sends it to" data-testid="ins-irq" data-lab={target.irq}>
          INTA{fn.pci ? ` → IRQ ${fn.pci.irqLine}` : ''}
        </span>
        <span title={help('isr')} data-lab={target.isr}>ISR {fn.isr}</span>
        <span title="Device resets so far: the driver wrote 0 to device_status (§2.1.1, §4.1.4.3.1)" data-lab={target.resets}>
          resets {fn.resets}
        </span>
        {fn.lastError && <span className="ins-err" title="last error reported by the transport">⚠ {fn.lastError}</span>}
      </div>
      {fn.config.length > 0 && (
        <dl className="ins-config" title={help('config')}>
          {fn.config.map((f) => (
            <div key={f.name} title={`§${f.section} ${f.name}`} data-lab={target.config(f.name)}>
              <dt>{f.name}</dt>
              <dd>{f.value}</dd>
            </div>
          ))}
        </dl>
      )}
      <div className="ins-features" title={help('features')}>
        {fn.features.map((f) => (
          <span key={f.bit} data-lab={target.feature(f.name)} className={`ins-feature ${f.accepted ? 'accepted' : fn.featuresOk ? 'declined' : ''}`} title={`bit ${f.bit}: ${featureHelp(f.name)} ${f.accepted ? '(accepted)' : fn.featuresOk ? '(offered, not accepted)' : '(offered)'}`}>
            {f.name.replace(/^VIRTIO_(NET_|BLK_)?F_/, '')}
          </span>
        ))}
      </div>
    </section>
  );
}

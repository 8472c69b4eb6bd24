/**
 * The libvirt domain XML the plugin defines (a diskless machine that boots from the network, with one interface of
 * a deterministic MAC) and the few fields it reads back from `virsh dumpxml`. libvirt writes its XML in one
 * consistent layout, so the reader uses patterns rather than a full XML parser.
 */

/** The namespace of the plugin's `<metadata>` element, which records where Consortium placed the domain. */
export const METADATA_NS = 'https://consortium.dev/xmlns/libvirt/1';

/** How a domain's interface is connected on the hypervisor. */
export interface NetworkConfig {
  /** `bridge`: a host bridge (the usual PXE VLAN); `network`: a libvirt network; `user`: QEMU's user networking. */
  readonly type: 'bridge' | 'network' | 'user';
  /** The bridge or network name (not for `user`). */
  readonly source?: string;
  /** The NIC model (default virtio). */
  readonly model?: string;
}

/** What the plugin records in a domain's metadata. */
export interface DomainMetadata {
  /** The configured hypervisor name the domain was placed on. */
  readonly hypervisor?: string;
  /** Whether the domain was ever started by the plugin (only the first boot waits for PXE registration). */
  readonly booted?: boolean;
}

/** Everything that goes into a domain the plugin defines. */
export interface DomainSpec {
  readonly name: string;
  /** Kept when redefining an existing domain (libvirt refuses the same name with another UUID). */
  readonly uuid?: string;
  /** `kvm` on real hypervisors, `qemu` for TCG emulation without KVM. */
  readonly domainType: 'kvm' | 'qemu';
  readonly machine: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly mac: string;
  readonly network: NetworkConfig;
  readonly metadata: DomainMetadata;
}

/** One interface as read from a domain's XML. */
export interface DomainInterface {
  readonly type: string;
  readonly mac: string | undefined;
  readonly source: string | undefined;
}

/** What the plugin reads from a domain's XML. */
export interface DomainFacts {
  readonly name: string;
  readonly uuid: string | undefined;
  readonly memoryMib: number;
  readonly vcpus: number;
  readonly interfaces: readonly DomainInterface[];
  /** The plugin's metadata; undefined for a domain the plugin did not define. */
  readonly metadata: DomainMetadata | undefined;
}

/** Escapes text for an XML attribute or element. */
export function escapeXml(text: string): string {
  return text
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}

function unescapeXml(text: string): string {
  return text
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&apos;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
}

/** The plugin's metadata element, as `virsh metadata --set` takes it (without namespace) or inside a domain. */
export function metadataElement(metadata: DomainMetadata, prefix?: string): string {
  const attributes = [
    metadata.hypervisor === undefined ? '' : ` hypervisor='${escapeXml(metadata.hypervisor)}'`,
    metadata.booted === undefined ? '' : ` booted='${metadata.booted ? 'yes' : 'no'}'`,
  ].join('');
  return prefix === undefined
    ? `<vm${attributes}/>`
    : `<${prefix}:vm xmlns:${prefix}='${METADATA_NS}'${attributes}/>`;
}

function interfaceXml(mac: string, network: NetworkConfig): string {
  const source =
    network.type === 'bridge'
      ? `\n      <source bridge='${escapeXml(network.source ?? '')}'/>`
      : network.type === 'network'
        ? `\n      <source network='${escapeXml(network.source ?? '')}'/>`
        : '';
  return `    <interface type='${network.type}'>
      <mac address='${escapeXml(mac)}'/>${source}
      <model type='${escapeXml(network.model ?? 'virtio')}'/>
    </interface>`;
}

/** The XML of a diskless domain that boots from the network. */
export function domainXml(spec: DomainSpec): string {
  const uuid = spec.uuid === undefined ? '' : `\n  <uuid>${escapeXml(spec.uuid)}</uuid>`;
  return `<domain type='${spec.domainType}'>
  <name>${escapeXml(spec.name)}</name>${uuid}
  <metadata>
    ${metadataElement(spec.metadata, 'consortium')}
  </metadata>
  <memory unit='MiB'>${spec.memoryMib}</memory>
  <currentMemory unit='MiB'>${spec.memoryMib}</currentMemory>
  <vcpu>${spec.vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='${escapeXml(spec.machine)}'>hvm</type>
    <boot dev='network'/>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
${interfaceXml(spec.mac, spec.network)}
    <serial type='pty'/>
    <console type='pty'/>
  </devices>
</domain>
`;
}

const UNIT_TO_KIB: Readonly<Record<string, number>> = {
  b: 1 / 1024,
  bytes: 1 / 1024,
  k: 1,
  kib: 1,
  kb: 1000 / 1024,
  m: 1024,
  mib: 1024,
  mb: 1_000_000 / 1024,
  g: 1024 * 1024,
  gib: 1024 * 1024,
  gb: 1_000_000_000 / 1024,
};

function attribute(tag: string, name: string): string | undefined {
  const match = new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(tag);
  const value = match?.[1] ?? match?.[2];
  return value === undefined ? undefined : unescapeXml(value);
}

function readMetadata(xml: string): DomainMetadata | undefined {
  const escaped = METADATA_NS.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const tag = new RegExp(`<[\\w.-]+:vm\\b[^>]*xmlns:[\\w.-]+=(?:'${escaped}'|"${escaped}")[^>]*>`).exec(
    xml,
  )?.[0];
  if (tag === undefined) return undefined;
  const hypervisor = attribute(tag, 'hypervisor');
  const booted = attribute(tag, 'booted');
  return {
    ...(hypervisor === undefined ? {} : { hypervisor }),
    ...(booted === undefined ? {} : { booted: booted === 'yes' }),
  };
}

/** Reads the plugin's facts from a domain's XML; throws an Error when the XML has no name or memory. */
export function parseDomainXml(xml: string): DomainFacts {
  const name = /<name>([^<]*)<\/name>/.exec(xml)?.[1];
  const memory = /<memory\b([^>]*)>(\d+)<\/memory>/.exec(xml);
  if (name === undefined || memory === null) throw new Error('not a libvirt domain XML (no name or memory)');
  const unit = (attribute(memory[1] ?? '', 'unit') ?? 'KiB').toLowerCase();
  const kib = Number(memory[2]) * (UNIT_TO_KIB[unit] ?? 1);
  const vcpus = Number(/<vcpu\b[^>]*>(\d+)<\/vcpu>/.exec(xml)?.[1] ?? '1');
  const interfaces: DomainInterface[] = [];
  for (const match of xml.matchAll(/<interface\b([^>]*)>([\s\S]*?)<\/interface>/g)) {
    const body = match[2] ?? '';
    const mac = /<mac\b[^>]*>/.exec(body)?.[0];
    const source = /<source\b[^>]*>/.exec(body)?.[0];
    interfaces.push({
      type: attribute(match[1] ?? '', 'type') ?? 'unknown',
      mac: mac === undefined ? undefined : attribute(mac, 'address')?.toLowerCase(),
      source:
        source === undefined
          ? undefined
          : (attribute(source, 'bridge') ?? attribute(source, 'network') ?? attribute(source, 'dev')),
    });
  }
  const uuid = /<uuid>([^<]*)<\/uuid>/.exec(xml)?.[1];
  return {
    name: unescapeXml(name),
    uuid,
    memoryMib: Math.round(kib / 1024),
    vcpus,
    interfaces,
    metadata: readMetadata(xml),
  };
}

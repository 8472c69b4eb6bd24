import { describe, expect, it } from 'vitest';
import { domainXml, METADATA_NS, parseDomainXml } from './domain-xml.js';

const spec = {
  name: 'web-01',
  domainType: 'qemu',
  machine: 'pc',
  vcpus: 2,
  memoryMib: 48,
  mac: '52:54:00:aa:bb:cc',
  network: { type: 'bridge', source: 'br-pxe' },
  metadata: { hypervisor: 'hv-1', booted: false },
} as const;

/** What `virsh dumpxml --inactive` prints for a domain defined from `domainXml(spec)` (abridged). */
const DUMPED = `<domain type='qemu'>
  <name>web-01</name>
  <uuid>81bba1b8-2ba6-4f30-a292-16cc63d395f8</uuid>
  <metadata>
    <consortium:vm xmlns:consortium="${METADATA_NS}" hypervisor="hv-1" booted="yes"/>
  </metadata>
  <memory unit='KiB'>49152</memory>
  <currentMemory unit='KiB'>49152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <devices>
    <interface type='bridge'>
      <mac address='52:54:00:AA:BB:CC'/>
      <source bridge='br-pxe'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>`;

describe('domain XML', () => {
  it('describes a diskless domain that boots from the network', () => {
    const xml = domainXml(spec);
    expect(xml).toContain("<domain type='qemu'>");
    expect(xml).toContain("<memory unit='MiB'>48</memory>");
    expect(xml).toContain("<type arch='x86_64' machine='pc'>hvm</type>");
    expect(xml).toContain("<boot dev='network'/>");
    expect(xml).toContain(`<consortium:vm xmlns:consortium='${METADATA_NS}' hypervisor='hv-1' booted='no'/>`);
    expect(xml).toContain(
      "<interface type='bridge'>\n      <mac address='52:54:00:aa:bb:cc'/>\n      <source bridge='br-pxe'/>",
    );
    expect(xml).not.toContain('<disk');
    expect(xml).not.toContain('<uuid>');
    expect(domainXml({ ...spec, uuid: 'u-1', network: { type: 'user' } })).toContain('<uuid>u-1</uuid>');
    expect(domainXml({ ...spec, name: "a'<b" })).toContain('<name>a&apos;&lt;b</name>');
  });

  it('reads back what libvirt wrote', () => {
    expect(parseDomainXml(DUMPED)).toEqual({
      name: 'web-01',
      uuid: '81bba1b8-2ba6-4f30-a292-16cc63d395f8',
      memoryMib: 48,
      vcpus: 2,
      interfaces: [{ type: 'bridge', mac: '52:54:00:aa:bb:cc', source: 'br-pxe' }],
      metadata: { hypervisor: 'hv-1', booted: true },
    });
    const foreign = parseDomainXml("<domain><name>x</name><memory unit='GiB'>2</memory></domain>");
    expect(foreign).toMatchObject({ memoryMib: 2048, vcpus: 1, interfaces: [], metadata: undefined });
    expect(() => parseDomainXml('<nothing/>')).toThrow('not a libvirt domain XML (no name or memory)');
  });
});

/**
 * @consortium/test-libvirt-lab: real libvirtd and virtlogd started without systemd, reached over a real sshd on
 * loopback with a key-only user, for the libvirt plugin's integration tests (DESIGN.md §9).
 */
export type { LabDomainEvent, LabDomainEvents, LibvirtLab, LibvirtLabOptions } from './lab.js';
export { startLibvirtLab } from './lab.js';
export type { CommandResult } from './system.js';
export { LAB_ROOT, LAB_URI, LIBVIRT_LAB_INSTALL, LIBVIRT_LAB_PACKAGES } from './system.js';

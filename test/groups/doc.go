// Package groupstest runs real coral processes to check site groups end to
// end, as a site owner uses them: `coral group init` and `coral group sign
// -publish`, the manifest reaching every member over libp2p, the custom
// domain served from the manifest's origin, and Coral's DNS answering the
// CNAME target with the group's nodes only.
package groupstest

//! `secure-export-emulator`: Local ServiceNow and BMC Helix API emulators with fault injection, for tests, benches and demos.

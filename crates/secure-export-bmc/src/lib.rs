//! `secure-export-bmc`: BMC Helix ITSM backend (AR REST API, CMDB lookup) for secure-export.

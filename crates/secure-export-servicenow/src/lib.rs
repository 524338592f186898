//! `secure-export-servicenow`: ServiceNow Table API backend (incidents, events, CMDB lookup) for secure-export.

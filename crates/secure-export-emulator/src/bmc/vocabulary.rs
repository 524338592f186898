//! The exact strings of the ITSM incident forms: enumerations, Status_Reason
//! values per status, and the field names qualifications may use.

/// `Service_Type` values.
pub(crate) const SERVICE_TYPES: &[&str] = &[
    "User Service Restoration",
    "User Service Request",
    "Infrastructure Restoration",
    "Infrastructure Event",
    "Security Incident",
];

/// `Reported Source` values.
pub(crate) const REPORTED_SOURCES: &[&str] = &[
    "Direct Input",
    "Email",
    "External Escalation",
    "Fax",
    "Self Service",
    "Systems Management",
    "Phone",
    "Voice Mail",
    "Walk In",
    "Web",
    "Other",
    "BMC Impact Manager Event",
    "Chat",
];

/// `Status_Reason` values valid with `Resolved`.
pub(crate) const RESOLVED_REASONS: &[&str] = &[
    "Automated Resolution Reported",
    "Customer Follow-Up Required",
    "Future Enhancement",
    "Monitoring Incident",
    "No Further Action Required",
    "Temporary Corrective Action",
];

/// `Status_Reason` values valid with `Pending`.
pub(crate) const PENDING_REASONS: &[&str] = &[
    "Client Action Required",
    "Client Hold",
    "Future Enhancement",
    "Infrastructure Change",
    "Infrastructure Change Created",
    "Local Site Action Required",
    "Purchase Order Approval",
    "Registration Approval",
    "Request",
    "Supplier Delivery",
    "Support Contract Hold",
    "Third Party Vendor Action Reqd",
    "Monitoring Incident",
];

/// Fields of `HPD:Help Desk` a qualification may name even before any entry has them.
pub(crate) const HELP_DESK_FIELDS: &[&str] = &[
    "Entry ID",
    "Request ID",
    "Incident Number",
    "InstanceId",
    "Status",
    "Status_Reason",
    "Description",
    "Detailed Decription",
    "Impact",
    "Urgency",
    "Priority",
    "Reported Source",
    "Service_Type",
    "First_Name",
    "Last_Name",
    "Login_ID",
    "Company",
    "Assigned Group",
    "Assigned Support Company",
    "Assigned Support Organization",
    "Assignee",
    "Categorization_Tier_1",
    "Categorization_Tier_2",
    "Categorization_Tier_3",
    "Product_Categorization_Tier_1",
    "Product_Categorization_Tier_2",
    "Product_Categorization_Tier_3",
    "Resolution",
    "Vendor Ticket Number",
    "HPD_CI",
    "HPD_CI_ReconID",
    "HPD_CI_FormName",
    "ServiceCI",
    "ServiceCI_ReconID",
    "mc_ueid",
    "TimeOfEvent",
    "Submit Date",
    "Submitter",
    "Last Modified Date",
    "Last Modified By",
    "Reported Date",
    "Last Resolved Date",
    "Closed Date",
];

/// Fields of `HPD:WorkLog` a qualification may name.
pub(crate) const WORK_LOG_FIELDS: &[&str] = &[
    "Work Log ID",
    "Request ID",
    "Incident Number",
    "Work Log Type",
    "Description",
    "Detailed Description",
    "View Access",
    "Secure Work Log",
    "Submit Date",
    "Submitter",
];

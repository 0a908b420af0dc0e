"""The upload operator: SafetyShieldUploadOperator."""

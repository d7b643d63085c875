"""Local stand-ins for AWS services that moto cannot play (tests and local runs only;
never packaged into the Lambda function)."""

-- Idempotent: the user and database of MLflow (Kubeflow Pipelines keeps its bundled MySQL, see the
-- kubeflow_pipelines role). The password arrives as a psql variable from a Kubernetes Secret, never in this file.
SELECT 'CREATE ROLE mlflow LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlflow') \gexec
ALTER ROLE mlflow PASSWORD :'mlflow_password';
GRANT mlflow TO CURRENT_USER;
SELECT 'CREATE DATABASE mlflow OWNER mlflow' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow') \gexec
ALTER DATABASE mlflow OWNER TO mlflow;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;

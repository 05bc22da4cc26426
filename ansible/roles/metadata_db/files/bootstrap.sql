-- Idempotent: users and databases for MLflow and Kubeflow Pipelines. Passwords arrive as psql variables
-- from a Kubernetes Secret, never in this file.
SELECT 'CREATE ROLE mlflow LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mlflow') \gexec
SELECT 'CREATE ROLE kfp LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'kfp') \gexec
ALTER ROLE mlflow PASSWORD :'mlflow_password';
ALTER ROLE kfp PASSWORD :'kfp_password';
GRANT mlflow TO CURRENT_USER;
GRANT kfp TO CURRENT_USER;
SELECT 'CREATE DATABASE mlflow OWNER mlflow' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'mlflow') \gexec
SELECT 'CREATE DATABASE kfp OWNER kfp' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'kfp') \gexec
ALTER DATABASE mlflow OWNER TO mlflow;
ALTER DATABASE kfp OWNER TO kfp;
REVOKE ALL ON DATABASE mlflow FROM PUBLIC;
REVOKE ALL ON DATABASE kfp FROM PUBLIC;

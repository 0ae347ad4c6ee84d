"""What the template's tests (tests/), reliability suite (reliability/) and benchmark (bench/)
share: copier.yml's questions and the variants built from them (answers), rendering the working
tree (render), the generated project's environment (environment), running commands and servers
(processes), and PostgreSQL (postgres, cluster)."""

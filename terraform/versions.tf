terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 6.14.0, < 8.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0, < 4.0.0"
    }
  }

  # State lives in a GCS bucket given at init time:
  #   terraform init -backend-config="bucket=STATE_BUCKET" -backend-config="prefix=orchestra/ENV"
  backend "gcs" {}
}

provider "google" {
  project = var.project
  region  = var.region

  default_labels = {
    app         = "orchestra"
    environment = var.environment
    managed-by  = "terraform"
  }
}

// Package v1alpha1 contains the Skein mesh API: MeshService, TrafficPolicy and
// AuthorizationPolicy, in the API group mesh.skein.io.
//
// +kubebuilder:object:generate=true
// +groupName=mesh.skein.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the Skein mesh API.
	GroupVersion = schema.GroupVersion{Group: "mesh.skein.io", Version: "v1alpha1"}

	// SchemeBuilder adds the Skein mesh types to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the Skein mesh types to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

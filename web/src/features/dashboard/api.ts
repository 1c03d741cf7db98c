/** The dashboard's calls to the API. */
import { api, must, type Schemas } from "@/shared/api/client";

export type Appointment = Schemas["AppointmentView"];
export type Dashboard = Schemas["DoctorDashboard"];

/** The signed-in doctor's dashboard. */
export async function loadDashboard(): Promise<Dashboard> {
  return must(await api.GET("/api/v1/dashboard/doctor"));
}

const names = new Map<string, Promise<string>>();

/** A patient's display name, fetched once per patient (a doctor may read their patients). */
export function patientName(id: string): Promise<string> {
  let name = names.get(id);
  if (!name) {
    name = api
      .GET("/api/v1/patients/{patient_id}", { params: { path: { patient_id: id } } })
      .then((r) => must(r).name)
      .catch((e: unknown) => {
        names.delete(id);
        throw e;
      });
    names.set(id, name);
  }
  return name;
}

const at = (id: string) => ({ params: { path: { id } } });

/** Confirms a requested (or rescheduled) appointment. */
export async function confirm(id: string): Promise<Appointment> {
  return must(await api.POST("/api/v1/appointments/{id}/confirm", at(id)));
}

/** Declines (cancels) an appointment with a reason. */
export async function decline(id: string, reason: string): Promise<Appointment> {
  return must(await api.POST("/api/v1/appointments/{id}/cancel", { ...at(id), body: { reason } }));
}

/** Marks a started appointment completed. */
export async function complete(id: string): Promise<Appointment> {
  return must(await api.POST("/api/v1/appointments/{id}/complete", at(id)));
}

/** Marks a started appointment as a no-show. */
export async function noShow(id: string): Promise<Appointment> {
  return must(await api.POST("/api/v1/appointments/{id}/no-show", at(id)));
}

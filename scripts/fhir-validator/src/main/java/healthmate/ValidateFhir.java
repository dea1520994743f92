package healthmate;

import ca.uhn.fhir.context.FhirContext;
import ca.uhn.fhir.context.support.DefaultProfileValidationSupport;
import ca.uhn.fhir.validation.FhirValidator;
import ca.uhn.fhir.validation.ResultSeverityEnum;
import ca.uhn.fhir.validation.SingleValidationMessage;
import ca.uhn.fhir.validation.ValidationOptions;
import ca.uhn.fhir.validation.ValidationResult;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.hl7.fhir.common.hapi.validation.support.CommonCodeSystemsTerminologyService;
import org.hl7.fhir.common.hapi.validation.support.InMemoryTerminologyServerValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.PrePopulatedValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.SnapshotGeneratingValidationSupport;
import org.hl7.fhir.common.hapi.validation.support.ValidationSupportChain;
import org.hl7.fhir.common.hapi.validation.validator.FhirInstanceValidator;
import org.hl7.fhir.r4.model.Bundle;
import org.hl7.fhir.r4.model.CodeableConcept;
import org.hl7.fhir.r4.model.Coding;
import org.hl7.fhir.r4.model.ElementDefinition;
import org.hl7.fhir.r4.model.Observation;
import org.hl7.fhir.r4.model.Resource;
import org.hl7.fhir.r4.model.StructureDefinition;

/**
 * Validates FHIR R4 JSON files (Bundles or Observations) with HAPI FHIR's instance validator
 * (the HL7 core validator), offline, and prints every message.
 *
 * <p>Each file is validated as it is (the base resource and any meta.profile it declares);
 * then every Observation in it (the file itself, or each Bundle entry) is validated again,
 * alone, against the R4 vital-signs profile its LOINC code calls for (heartrate, bp, ...),
 * whether or not it declares one. Terminology is checked only where it can be offline:
 * UCUM codes (the ucum library's essence file), the FHIR core code systems and the value
 * sets enumerated from them; no terminology server is configured, so LOINC codes are not
 * looked up. vs-1 of the vital-signs profiles is corrected first (see {@link #vitalSignsErratum}).
 *
 * <p>Prints one line per message: {@code FILE<TAB>WHERE<TAB>SEVERITY<TAB>LOCATION<TAB>MESSAGE<TAB>ID},
 * then a summary line ({@code validated N file(s), M Observation(s) against a vital-signs profile:
 * E error(s), W warning(s), I information}); the exit status is 1 when any message is an error or fatal, 2 on a
 * usage or read error, else 0.
 */
public final class ValidateFhir {
  private static final String SD = "http://hl7.org/fhir/StructureDefinition/";
  private static final String LOINC = "http://loinc.org";
  /** LOINC code -> the R4 vital-signs profile that fixes that code. */
  private static final Map<String, String> PROFILE_BY_LOINC = Map.of(
      "8867-4", "heartrate", "9279-1", "resprate", "2708-6", "oxygensat", "8310-5", "bodytemp",
      "8302-2", "bodyheight", "29463-7", "bodyweight", "39156-5", "bmi", "85354-9", "bp");

  private static final String VS1_PUBLISHED = "($this as dateTime).toString().length() >= 8";
  private static final String VS1_CORRECTED = "$this is dateTime implies $this.toString().length() >= 10";

  private final FhirContext ctx = FhirContext.forR4();
  private final FhirValidator validator;
  private final Map<ResultSeverityEnum, Integer> counts = new EnumMap<>(ResultSeverityEnum.class);
  private int profiled;

  private ValidateFhir() {
    DefaultProfileValidationSupport core = new DefaultProfileValidationSupport(ctx);
    ValidationSupportChain chain = new ValidationSupportChain(
        vitalSignsErratum(core),
        core,
        new CommonCodeSystemsTerminologyService(ctx),
        new InMemoryTerminologyServerValidationSupport(ctx),
        new SnapshotGeneratingValidationSupport(ctx));
    FhirInstanceValidator module = new FhirInstanceValidator(chain);
    module.setErrorForUnknownProfiles(true);
    validator = ctx.newValidator().registerValidatorModule(module);
  }

  /**
   * The R4 vital-signs profiles with vs-1 as it was meant: the published FHIRPath
   * {@code ($this as dateTime).toString().length() >= 8} fails on every effectivePeriod (the
   * cast is empty), although its own text reads "if Observation.effective[x] is dateTime";
   * replaced by {@code $this is dateTime implies $this.toString().length() >= 10}, the
   * correction the Firely validator applies and US Core publishes. Other rules are untouched.
   */
  private PrePopulatedValidationSupport vitalSignsErratum(DefaultProfileValidationSupport core) {
    PrePopulatedValidationSupport patched = new PrePopulatedValidationSupport(ctx);
    for (Object resource : core.fetchAllStructureDefinitions()) {
      StructureDefinition sd = ((StructureDefinition) resource).copy();
      boolean changed = false;
      List<ElementDefinition> elements = new ArrayList<>(sd.getSnapshot().getElement());
      elements.addAll(sd.getDifferential().getElement());
      for (ElementDefinition element : elements) {
        for (ElementDefinition.ElementDefinitionConstraintComponent rule : element.getConstraint()) {
          if ("vs-1".equals(rule.getKey()) && VS1_PUBLISHED.equals(rule.getExpression())) {
            rule.setExpression(VS1_CORRECTED);
            changed = true;
          }
        }
      }
      if (changed) {
        patched.addStructureDefinition(sd);
        System.err.println("vs-1 erratum applied to " + sd.getUrl());
      }
    }
    return patched;
  }

  public static void main(String[] args) {
    if (args.length == 0) {
      System.err.println("usage: java -jar fhir-validator.jar FILE.json...");
      System.exit(2);
    }
    ValidateFhir run = new ValidateFhir();
    for (String arg : args) {
      try {
        run.file(Path.of(arg));
      } catch (Exception e) {  // unreadable, not JSON, not a FHIR resource
        System.err.println(arg + ": cannot be validated: " + e);
        System.exit(2);
      }
    }
    int errors = run.count(ResultSeverityEnum.ERROR) + run.count(ResultSeverityEnum.FATAL);
    System.out.printf("validated %d file(s), %d Observation(s) against a vital-signs profile: %d error(s), "
        + "%d warning(s), %d information%n", args.length, run.profiled, errors,
        run.count(ResultSeverityEnum.WARNING), run.count(ResultSeverityEnum.INFORMATION));
    System.exit(errors > 0 ? 1 : 0);
  }

  private int count(ResultSeverityEnum severity) {
    return counts.getOrDefault(severity, 0);
  }

  private void file(Path path) throws Exception {
    String json = Files.readString(path, StandardCharsets.UTF_8);
    report(path, "resource", validator.validateWithResult(json));
    Resource parsed = (Resource) ctx.newJsonParser().parseResource(json);
    List<Observation> observations = new ArrayList<>();
    if (parsed instanceof Observation obs) {
      observations.add(obs);
    } else if (parsed instanceof Bundle bundle) {
      for (Bundle.BundleEntryComponent entry : bundle.getEntry()) {
        if (entry.getResource() instanceof Observation obs) {
          observations.add(obs);
        }
      }
    }
    for (Observation obs : observations) {
      Set<String> profiles = applicableProfiles(obs);
      if (profiles.isEmpty()) {
        continue;
      }
      ValidationOptions options = new ValidationOptions();
      profiles.forEach(options::addProfile);
      profiled++;
      String where = "Observation/" + obs.getIdPart() + " as " + String.join(",", profiles);
      report(path, where, validator.validateWithResult(obs, options));
    }
  }

  /** The vital-signs profiles an Observation must meet, from its LOINC codes and category. */
  private static Set<String> applicableProfiles(Observation obs) {
    Set<String> out = new LinkedHashSet<>();
    for (Coding coding : obs.getCode().getCoding()) {
      String specific = LOINC.equals(coding.getSystem()) ? PROFILE_BY_LOINC.get(coding.getCode()) : null;
      if (specific != null) {
        out.add(SD + "vitalsigns");
        out.add(SD + specific);
      }
    }
    for (CodeableConcept category : obs.getCategory()) {
      for (Coding coding : category.getCoding()) {
        if ("vital-signs".equals(coding.getCode())) {
          out.add(SD + "vitalsigns");
        }
      }
    }
    return out;
  }

  private void report(Path path, String where, ValidationResult result) {
    for (SingleValidationMessage m : result.getMessages()) {
      counts.merge(m.getSeverity(), 1, Integer::sum);
      System.out.println(String.join("\t", path.toString(), where, m.getSeverity().name(),
          String.valueOf(m.getLocationString()), m.getMessage().replace('\n', ' '),
          String.valueOf(m.getMessageId())));
    }
  }
}
